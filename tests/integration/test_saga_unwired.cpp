// Until the committer, dispatcher, gateway and recovery run sagas (issue 14,
// docs/design/sagas.md §13 steps 4-7), a routes file with a saga route must
// not start a daemon that would serve it as one command.
#include <sys/wait.h>

#include <fstream>

#include <catch2/catch.hpp>

#include "harness.h"

using namespace asyncops::it;

TEST_CASE("a routes file with a saga route is refused at start with one line naming it", "[saga]") {
  TempDir dir;
  std::string routes = dir.path + "/routes.json";
  std::ofstream(routes) << R"({"routes":[
    {"method":"POST","path":"/users","command":"create_user","service":"users","resource":"/users/{id}"},
    {"method":"POST","path":"/orders","command":"place_order","resource":"/orders/{id}","steps":[
      {"name":"reserve","service":"inventory","command":"reserve_stock","compensate":"release_stock"},
      {"name":"create","service":"orders","command":"create_order"}]}]})";
  Process p({ASYNCOPSD_BIN, "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--routes", routes},
            dir.path + "/log");
  int status = p.wait(std::chrono::seconds(10));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  std::string log = slurp(dir.path + "/log");
  CHECK(log.find("sagas are not wired yet: route POST /orders") != std::string::npos);
  // Refused before anything is served: no URL file.
  CHECK(slurp(dir.path + "/asyncopsd.url").empty());
}
