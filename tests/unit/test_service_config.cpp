#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "shared/config.h"
#include "shared/service_config.h"

using namespace asyncops;

namespace {

// Loads text as a config file; the error or the services.
Result<std::vector<ServiceConfig>> services_of(const std::string& text, std::string* path_out = nullptr) {
  char tmpl[] = "/tmp/aou-XXXXXX";
  int fd = ::mkstemp(tmpl);
  REQUIRE(fd >= 0);
  ::close(fd);
  std::ofstream(tmpl) << text;
  auto file = load_config(tmpl, true);
  if (path_out) *path_out = tmpl;
  ::unlink(tmpl);
  if (!file) return Error{file.error()};
  return load_service_configs(file.value());
}

}  // namespace

TEST_CASE("[service.NAME] sections: every key, defaults, file order", "[service_config]") {
  auto s = services_of(
      "[daemon]\nlisten = 127.0.0.1:8080\n"
      "[service.orders]\nkind = exec\ncommand = ./orders.sh\nworkers = 2\nconcurrency = 4\ntimeout = 5s\n"
      "attempts = 5\nbackoff = 250ms\nenv = A=1\nenv = B=two=2\nlines = true\n"
      "[service.shipping]\nkind = http\nurl = https://upstream:9443/ship/{id}\nmethod = PUT\nca = ca.pem\n"
      "[service.users]\nkind = users\n");
  REQUIRE(s);
  REQUIRE(s.value().size() == 3);
  const auto& o = s.value()[0];
  CHECK(o.name == "orders");
  CHECK(o.kind == "exec");
  CHECK(o.command == "./orders.sh");
  CHECK(o.workers == 2);
  CHECK(o.concurrency == 4);
  CHECK(o.timeout == std::chrono::seconds(5));
  CHECK(o.attempts == 5);
  CHECK(o.backoff == std::chrono::milliseconds(250));
  CHECK(o.env == std::vector<std::string>{"A=1", "B=two=2"});
  CHECK(o.lines);
  CHECK(o.base_dir == "/tmp");
  const auto& h = s.value()[1];
  CHECK(h.name == "shipping");
  CHECK(h.url == "https://upstream:9443/ship/{id}");
  CHECK(h.method == "PUT");
  CHECK(h.ca_file == "/tmp/ca.pem");  // relative to the config file
  const auto& u = s.value()[2];
  CHECK(u.kind == "users");
  CHECK(u.workers == 1);
  CHECK(u.concurrency == 1);
  CHECK(u.timeout == std::chrono::seconds(30));
  CHECK(u.attempts == 3);
}

TEST_CASE("a section's kind may name a built-in service, which runs under the section's name", "[service_config]") {
  auto s = services_of("[service.stock]\nkind = inventory\n[service.pay]\nkind = payments\n[service.o]\nkind = orders\n");
  REQUIRE(s);
  REQUIRE(s.value().size() == 3);
  CHECK(s.value()[0].name == "stock");
  CHECK(s.value()[0].kind == "inventory");
  CHECK(s.value()[1].kind == "payments");
  CHECK(s.value()[2].kind == "orders");
  CHECK(is_builtin_service_kind("users"));
  CHECK_FALSE(is_builtin_service_kind("exec"));
}

TEST_CASE("[service.NAME] errors name the file, line and key", "[service_config]") {
  auto err = [](const std::string& text) {
    auto s = services_of(text);
    REQUIRE_FALSE(s);
    return s.error();
  };
  CHECK(err("[service.a]\nkind = ftp\n").find(":2: kind = ftp: expected exec, http, or a built-in service (users, inventory, payments, orders)") != std::string::npos);
  CHECK(err("[service.a]\ncommand = x\n").find("has no kind") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\n").find("is kind exec but has no command") != std::string::npos);
  CHECK(err("[service.a]\nkind = http\n").find("is kind http but has no url") != std::string::npos);
  CHECK(err("[service.a]\nkind = http\nurl = ftp://x\n").find("expected an http:// or https:// URL") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\nworkers = many\n").find("workers = many") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\nconcurrency = 0\n").find("from 1 to 1024") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\ntimeout = soon\n").find("timeout = soon") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\nenv = NOEQUALS\n").find("expected KEY=VALUE") != std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\ncolour = red\n").find("unknown key 'colour' in [service.a]") !=
        std::string::npos);
  CHECK(err("[service.a]\nkind = exec\ncommand = x\nurl = http://h/\n").find("are for kind http") != std::string::npos);
  CHECK(err("[service.a/b]\nkind = users\n").find("a service name is") != std::string::npos);
  CHECK(err("[services]\n").find("unknown section [services]") != std::string::npos);
}

TEST_CASE("declared services must match the routes' services, each way, naming the odd one", "[service_config]") {
  auto s = services_of("[service.orders]\nkind = exec\ncommand = x\n[service.ghost]\nkind = users\n");
  REQUIRE(s);
  std::string unused = check_services_match(s.value(), {"orders"}, "my.conf").error();
  CHECK(unused.find("service 'ghost' is declared but no route uses it") != std::string::npos);
  CHECK(unused.find("my.conf:4") != std::string::npos);
  std::string undeclared = check_services_match(s.value(), {"orders", "ghost", "billing"}, "my.conf").error();
  CHECK(undeclared.find("a route uses service 'billing', which my.conf does not declare") != std::string::npos);
  CHECK(check_services_match(s.value(), {"ghost", "orders"}, "my.conf").ok());
  CHECK(undeclared.find('\n') == std::string::npos);
}
