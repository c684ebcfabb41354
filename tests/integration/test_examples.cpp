// The examples of examples/ run as their READMEs say (issue 13), on a copy
// of each example directory: they write their state next to their config.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

std::string copy_example(const std::string& name, const TempDir& dir) {
  std::string to = dir.path + "/" + name;
  std::string cmd = "cp -r '" + std::string(ASYNCOPS_SOURCE_DIR) + "/examples/" + name + "' '" + to + "'";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return to;
}

// `cd DIR && asyncops up --config asyncops.conf`, as the README says; the URL once ready.
std::string start_up(Process& proc, const std::string& dir, const std::string& data, const std::string& log) {
  std::string cmd = "cd '" + dir + "' && exec '" + ASYNCOPS_CLI_BIN + "' up --config asyncops.conf --data-dir '" +
                    data + "' --listen 127.0.0.1:0";
  proc = Process({"/bin/sh", "-c", cmd}, log, {{"XDG_RUNTIME_DIR", data + "/run"}});
  std::string url;
  eventually([&] {
    std::istringstream in(slurp(log));
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("http://", 0) == 0) url = line;
    }
    return !url.empty();
  }, std::chrono::seconds(60));
  return url;
}

json submit(const std::string& url, const std::string& method, const std::string& path, const std::string& body,
            int* exit_code) {
  std::vector<std::string> args = {"--url", url, "--json", "submit", method, path};
  if (!body.empty()) args.insert(args.end(), {"-d", body});
  args.insert(args.end(), {"--wait", "--timeout", "30"});
  auto r = run_cli(args);
  *exit_code = r.exit_code;
  INFO(r.err);
  return json::parse(r.out, nullptr, false);
}

// GET path (a resource from the read model): its body.
std::string read_resource(const std::string& url, const std::string& path) {
  httplib::Client c(url);
  auto r = c.Get(path);
  return r && r->status == 200 ? r->body : "";
}

}  // namespace

TEST_CASE("examples/orders: a shell exec service behind asyncops", "[services][examples]") {
  TempDir dir;
  std::string example = copy_example("orders", dir);
  Process proc;
  std::string log = dir.path + "/up.log";
  std::string url = start_up(proc, example, dir.path + "/data", log);
  INFO(slurp(log));
  REQUIRE(!url.empty());
  int code = -1;
  json placed = submit(url, "POST", "/orders", R"({"item":"tea","quantity":2})", &code);
  CHECK(code == 0);
  CHECK(placed["state"] == "completed");
  std::string resource = placed.value("resource", "");
  CHECK(read_resource(url, resource).find("\"tea\"") != std::string::npos);
  json none = submit(url, "POST", "/orders", R"({"item":"nothing","quantity":1})", &code);
  CHECK(code == 3);
  CHECK(none["code"] == "out_of_stock");
  json zero = submit(url, "POST", "/orders", R"({"item":"tea","quantity":0})", &code);
  CHECK(code == 3);
  CHECK(zero["code"] == "bad_quantity");
  json canceled = submit(url, "DELETE", resource, "", &code);
  CHECK(code == 0);
  CHECK(canceled["state"] == "completed");
  proc.signal(SIGTERM);
  CHECK(proc.wait(std::chrono::seconds(20)) != -1);
}

TEST_CASE("examples/orders-saga: asyncops up runs the saga on the built-in demo services", "[services][examples][saga]") {
  TempDir dir;
  std::string example = copy_example("orders-saga", dir);
  Process proc;
  std::string log = dir.path + "/up.log";
  std::string url = start_up(proc, example, dir.path + "/data", log);
  INFO(slurp(log));
  REQUIRE(!url.empty());
  int code = -1;
  json placed = submit(url, "POST", "/orders", R"({"sku":"apple","qty":2,"card":"4000000000000001"})", &code);
  CHECK(code == 0);
  CHECK(placed["state"] == "completed");
  REQUIRE(placed["steps"].size() == 3);
  CHECK(json::parse(read_resource(url, placed.value("resource", "")), nullptr, false)["amount"] == 200);
  json declined = submit(url, "POST", "/orders", R"({"sku":"apple","qty":1,"card":"4000000000000002"})", &code);
  CHECK(code == 3);
  CHECK(declined["code"] == "card_declined");
  CHECK(declined["steps"][0]["compensation"]["state"] == "completed");
  proc.signal(SIGTERM);
  CHECK(proc.wait(std::chrono::seconds(20)) != -1);
}

TEST_CASE("examples/http-upstream: asyncops in front of a slow HTTP service", "[services][examples]") {
  TempDir dir;
  std::string example = copy_example("http-upstream", dir);
  // A free port. (An httplib::Server bound only to find one keeps its socket
  // listening, SO_REUSEPORT: the kernel would share connections with it.)
  int port = free_port();
  // The example's upstream listens on 9090; this copy uses a free port.
  std::string sed = "sed -i 's/127.0.0.1:9090/127.0.0.1:" + std::to_string(port) + "/' '" + example + "/asyncops.conf'";
  REQUIRE(std::system(sed.c_str()) == 0);
  Process upstream({ASYNCOPS_EXAMPLE_UPSTREAM_BIN, "--listen", "127.0.0.1:" + std::to_string(port), "--delay-ms",
                    "200", "--fail-first", "1"},
                   dir.path + "/upstream.log");
  REQUIRE(eventually([&] { return slurp(dir.path + "/upstream.log").find("listening") != std::string::npos; }));
  Process proc;
  std::string log = dir.path + "/up.log";
  std::string url = start_up(proc, example, dir.path + "/data", log);
  INFO(slurp(log) + slurp(dir.path + "/upstream.log"));
  REQUIRE(!url.empty());
  int code = -1;
  // The first request gets 503 with Retry-After: 1, the next one ships.
  json shipped = submit(url, "POST", "/shipments", R"({"address":"1 Main St","parcels":2})", &code);
  CHECK(code == 0);
  CHECK(shipped["state"] == "completed");
  std::string resource = shipped.value("resource", "");
  CHECK(read_resource(url, resource).find("\"booked\"") != std::string::npos);
  json bad = submit(url, "POST", "/shipments", R"({"address":"1 Main St","parcels":0})", &code);
  CHECK(code == 3);
  CHECK(bad["code"] == "bad_parcels");
  json gone = submit(url, "DELETE", resource, "", &code);
  CHECK(code == 0);
  json again = submit(url, "DELETE", resource, "", &code);
  CHECK(code == 3);
  CHECK(again["code"] == "shipment_not_found");
  proc.signal(SIGTERM);
  CHECK(proc.wait(std::chrono::seconds(20)) != -1);
}
