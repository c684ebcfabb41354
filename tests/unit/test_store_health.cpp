// The store's health as /readyz reports it: failing commits (a full disk)
// and corruption met at run time (issue 15, items 5 and 6).
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <fstream>
#include <thread>

#include "daemon/gateway.h"
#include "daemon/store_health.h"
#include "store/sqlite_health.h"
#include "store_fixture.h"
#include "tests/store_damage.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

// SQLite's error log must be set before the first connection of the
// process opens: at static initialisation, as asyncopsd's daemon_main() does.
const bool k_error_log_installed = install_sqlite_error_log();

// A committer and gateway over the store at path, with the daemon's
// readiness wiring.
struct Served {
  StoreHealth health;
  ChangeHub hub;
  GroupCommitter gc;
  ReaderPool readers;
  Gateway gw;

  explicit Served(const std::string& path)
      : gc(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()),
           {nullptr, nullptr, [this](const std::exception* f) { health.after_commit(f); }}),
        readers(path),
        gw(RouteTable::load_json(RouteTable::default_json()).value(), gc, readers, hub, {}, services()) {
    gc.start();
  }
  ~Served() {
    hub.shutdown();
    gc.stop();
  }
  GatewayServices services() {
    GatewayServices s;
    s.not_ready = [this] { return store_not_ready(health, gc); };
    return s;
  }
  ApiReply get(const std::string& path) {
    ApiRequest r;
    r.method = "GET";
    r.path = path;
    r.headers["host"] = "localhost:8080";
    return gw.handle(r);
  }
};

OperationRecord big_op() {
  OperationRecord op = new_op();
  op.payload["filler"] = std::string(64 * 1024, 'x');  // overflow pages: the file must grow
  return op;
}

void expect_not_ready(const ApiReply& r, const std::string& cause) {
  CHECK(r.status == 503);
  CHECK(r.content_type == "application/problem+json");
  auto j = json::parse(r.body);
  CHECK(j["code"] == "not_ready");
  CHECK_THAT(j["detail"].get<std::string>(), Catch::Contains(cause));
}

// Overwrites the root page of the history table with garbage, in a store
// no connection has open. Only that: opening the writer reads operations
// (the owners' migration, the backlog count), and this damage is for the
// writes and reads that follow.
void corrupt_history_page(const std::string& path) {
  REQUIRE(overwrite_pages(path, "SELECT rootpage FROM sqlite_schema WHERE type = 'table' AND name = 'history'") == 1);
}

// A store with a few operations, closed (its WAL copied back); returns an id.
std::string fill_and_close(const std::string& path) {
  auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  w->begin();
  std::string id;
  for (int i = 0; i < 20; ++i) {
    OperationRecord op = new_op();
    w->insert_operation(&op);
    id = op.id;
  }
  w->commit();
  return id;
}

}  // namespace

TEST_CASE("while commits fail (disk full) /readyz is 503 naming the cause, and ready again after one succeeds",
          "[store_health]") {
  REQUIRE(k_error_log_installed);
  TempDir dir;
  Served s(dir.path + "/asyncops.db");
  CHECK(s.get("/readyz").status == 200);
  REQUIRE(s.gc.accept(new_op()).ok());

  // A full disk: the file may not grow past its size.
  REQUIRE(s.gc.run([](StoreWriter& w, std::vector<Change>&) { w.set_max_page_count(1); }).ok());
  auto refused = s.gc.accept(big_op());
  REQUIRE_FALSE(refused.ok());
  CHECK_THAT(refused.error(), Catch::Contains("full"));
  CHECK(s.health.commits_failing());
  expect_not_ready(s.get("/readyz"), "store commits are failing (database or disk is full)");
  CHECK_FALSE(s.health.is_corrupt());

  // Space returns, but nothing else is written: the probe that a readiness
  // call queues (at most one a second) is the commit that succeeds. (The
  // write that returns the space throws, so it is not that commit.)
  REQUIRE_FALSE(s.gc.accept(big_op()).ok());
  REQUIRE_FALSE(s.gc
                    .run([](StoreWriter& w, std::vector<Change>&) {
                      w.set_max_page_count(1 << 30);
                      throw std::runtime_error("test: space returns");
                    })
                    .ok());
  REQUIRE(s.health.commits_failing());
  auto commits = s.gc.counters().commits.load();
  bool ready = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
       !ready && std::chrono::steady_clock::now() < deadline;) {
    ready = s.get("/readyz").status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(ready);
  CHECK(s.gc.counters().commits.load() > commits);  // the probe's
  CHECK(s.gc.accept(big_op()).ok());
  CHECK(s.get("/readyz").status == 200);
}

TEST_CASE("corruption met by a commit makes /readyz 503 for good", "[store_health]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  fill_and_close(path);
  corrupt_history_page(path);
  Served s(path);
  CHECK(s.get("/readyz").status == 200);  // nothing has touched the damage yet
  auto r = s.gc.accept(new_op());
  REQUIRE_FALSE(r.ok());
  CHECK(s.health.is_corrupt());
  expect_not_ready(s.get("/readyz"), "the store is corrupt (database disk image is malformed");
  // Unlike a full disk, a commit that succeeds does not make it ready.
  s.health.after_commit(nullptr);
  expect_not_ready(s.get("/readyz"), "the store is corrupt");
}

TEST_CASE("corruption met by a reader makes /readyz 503, through SQLite's error log", "[store_health]") {
  REQUIRE(k_error_log_installed);
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::string id = fill_and_close(path);
  corrupt_history_page(path);
  Served s(path);
  report_sqlite_errors_to(&s.health);
  struct Unroute {
    ~Unroute() { report_sqlite_errors_to(nullptr); }
  } unroute;
  CHECK(s.get("/readyz").status == 200);
  CHECK(s.get("/operations/" + id + "/history").status == 500);  // the reader met the damage
  CHECK(s.health.is_corrupt());
  CHECK(s.gc.counters().commit_failures.load() == 0);  // no commit saw it
  expect_not_ready(s.get("/readyz"), "the store is corrupt");
}

TEST_CASE("check_store passes a sound store and names the damage of a corrupt one", "[store_health]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  fill_and_close(path);
  CHECK(check_store(path).ok());
  corrupt_history_page(path);
  auto bad = check_store(path);
  REQUIRE_FALSE(bad.ok());
  CHECK_FALSE(bad.error().empty());
  CHECK(is_corruption_code(SQLITE_CORRUPT));
  CHECK(is_corruption_code(SQLITE_CORRUPT_INDEX));
  CHECK(is_corruption_code(SQLITE_NOTADB));
  CHECK_FALSE(is_corruption_code(SQLITE_FULL));
}
