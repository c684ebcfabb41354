// A damaged store, and `asyncops up` next to a running daemon (issues 15
// and 16): the daemon never serves a corrupt store as healthy.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <fstream>
#include <sstream>

#include "harness.h"
#include "tests/store_damage.h"

using namespace asyncops::it;

namespace {

// Overwrites the pages of the given tables and their indexes with garbage.
// Opening the store first also copies a WAL left by a killed daemon back
// into the file and removes it, so that no good copy of those pages
// survives in the WAL.
void corrupt_tables(const std::string& path, const std::string& tables) {
  REQUIRE(asyncops::test::overwrite_pages(
              path, "SELECT rootpage FROM sqlite_schema WHERE tbl_name IN (" + tables + ") AND rootpage > 0") > 0);
}

// Runs asyncopsd on dir until it exits; returns its exit status and log.
std::pair<int, std::string> run_daemon_to_exit(const std::string& dir) {
  std::string log = dir + "/refused.log";
  Process d({ASYNCOPSD_BIN, "--data-dir", dir, "--listen", "127.0.0.1:0"}, log);
  int status = d.wait(std::chrono::seconds(30));
  return {status, slurp(log)};
}

}  // namespace

TEST_CASE("after kill -9, a store with damaged pages is refused with one line and exit 3", "[health]") {
  System sys(0);
  for (int i = 0; i < 20; ++i) sys.create_user("u" + std::to_string(i) + "@example.com", "U");
  sys.stop_daemon(SIGKILL);
  corrupt_tables(sys.data_dir() + "/asyncops.db", "'operations', 'history'");
  ::unlink((sys.data_dir() + "/asyncopsd.url").c_str());

  auto [status, log] = run_daemon_to_exit(sys.data_dir());
  INFO(log);
  REQUIRE(status != -1);  // it did not start and serve
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("failed its integrity check"));
  CHECK_THAT(lines[0], Catch::Contains("asyncops store check"));
  CHECK_THAT(lines[0], Catch::Contains(".recover"));
  struct stat st {};
  CHECK(::stat((sys.data_dir() + "/asyncopsd.url").c_str(), &st) != 0);  // it never listened

  // Refused again: a refusal keeps the mark of the unclean stop.
  auto again = run_daemon_to_exit(sys.data_dir());
  REQUIRE(WIFEXITED(again.first));
  CHECK(WEXITSTATUS(again.first) == 3);
}

TEST_CASE("a store damaged while stopped cleanly: the first read of the damage makes /readyz 503, and the next "
          "start refuses it",
          "[health]") {
  System sys(1);
  std::string resource;
  for (int i = 0; i < 20; ++i) {
    auto op = sys.create_user("u" + std::to_string(i) + "@example.com", "U");
    REQUIRE(sys.wait_terminal(op["id"])["state"] == "completed");
    resource = op["resource"];
  }
  sys.workers().clear();
  sys.stop_daemon(SIGTERM);
  // Only the read model: a start reads operations and history, not it.
  corrupt_tables(sys.data_dir() + "/asyncops.db", "'resources'");

  sys.start_daemon();  // after a clean stop: no check at start
  CHECK(sys.get("/readyz").status == 200);
  CHECK(sys.get(resource).status == 500);
  auto ready = sys.get("/readyz");
  INFO(slurp(sys.data_dir() + "/daemon.log"));
  CHECK(ready.status == 503);
  CHECK(ready.json["code"] == "not_ready");
  CHECK_THAT(ready.json["detail"].get<std::string>(), Catch::Contains("the store is corrupt"));
  // Logged loudly, once, however often it is met.
  CHECK(sys.get(resource).status == 500);
  std::string log = slurp(sys.data_dir() + "/daemon.log");
  size_t first = log.find("THE STORE IS CORRUPT");
  REQUIRE(first != std::string::npos);
  CHECK(log.find("THE STORE IS CORRUPT", first + 1) == std::string::npos);
  CHECK_THAT(log.substr(log.rfind('\n', first) + 1, 60), Catch::Contains("error"));

  // A stop after that keeps the pid file: the next start checks, and refuses.
  sys.stop_daemon(SIGTERM);
  auto [status, refused] = run_daemon_to_exit(sys.data_dir());
  INFO(refused);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  CHECK(lines_of(refused).size() == 1);
}

TEST_CASE("a store damaged while stopped cleanly where a start reads it is refused at that start", "[health]") {
  System sys(0);
  for (int i = 0; i < 5; ++i) sys.create_user("u" + std::to_string(i) + "@example.com", "U");
  sys.stop_daemon(SIGTERM);
  corrupt_tables(sys.data_dir() + "/asyncops.db", "'operations', 'history'");
  auto [status, log] = run_daemon_to_exit(sys.data_dir());
  INFO(log);
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));  // not a crash on the damaged pages
  CHECK(WEXITSTATUS(status) == 3);
  auto lines = lines_of(log);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::Contains("asyncops store check"));
}

TEST_CASE("a second `asyncops up` on the same data dir leaves the first's URL file alone", "[health][up]") {
  TempDir dir;
  std::string log = dir.path + "/up.log";
  Process up({ASYNCOPS_CLI_BIN, "up", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--workers", "0"}, log);
  std::string url_path = dir.path + "/asyncopsd.url";
  std::string url = wait_for_url_line(log);
  REQUIRE(!url.empty());
  REQUIRE(slurp(url_path) == url + "\n");

  auto second = run_cli({"up", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--workers", "0"}, {},
                        std::chrono::seconds(60));
  INFO(second.err);
  CHECK(second.exit_code != 0);
  CHECK_THAT(second.err, Catch::Contains("another asyncopsd is running"));
  CHECK(second.out.find("http") == std::string::npos);  // it never took the first's URL for its own
  CHECK(slurp(url_path) == url + "\n");
  CHECK(run_cli({"list"}, {{"ASYNCOPS_DATA_DIR", dir.path}}).exit_code == 0);

  up.signal(SIGTERM);
  CHECK(up.wait(std::chrono::seconds(20)) != -1);
}
