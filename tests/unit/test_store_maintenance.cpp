// store/maintenance.h and store/pid_lock.h: what `asyncops stats` and
// `asyncops store …` do to the store file, without a daemon.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/maintenance.h"
#include "store/pid_lock.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {

// A store in dir with a pending, a completed and a failed operation.
struct Store {
  TempDir dir;
  std::string path = store_file(dir.path);
  OperationRecord pending, completed, failed;

  Store() {
    auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
    pending = new_op();
    completed = new_op();
    failed = new_op("update_user");
    w->begin();
    for (OperationRecord* op : {&pending, &completed, &failed}) w->insert_operation(op);
    Change c;
    w->apply_event(event_for(completed, OpState::completed), now_ms(), &c);
    w->apply_event(event_for(failed, OpState::failed, "boom"), now_ms(), &c);
    w->commit();
  }
};

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace

TEST_CASE("store_file is DATA_DIR/asyncops.db", "[maintenance]") {
  CHECK(store_file("/var/lib/x") == "/var/lib/x/asyncops.db");
}

TEST_CASE("every maintenance function says so when there is no store", "[maintenance]") {
  TempDir dir;
  std::string path = store_file(dir.path);
  std::string expected = "no store at " + path;
  CHECK(store_stats(path, now_ms()).error() == expected);
  CHECK(store_info(path).error() == expected);
  CHECK(store_operations(path, {}).error() == expected);
  CHECK(store_history(path, new_uuid_v7()).error() == expected);
  CHECK(export_store(path, [](const nlohmann::json&, int64_t, int64_t) { return Status::success(); }).error() ==
        expected);
  CHECK(check_store_consistency(path).error() == expected);
  CHECK(prune_store(path, now_ms()).error() == expected);
  CHECK(vacuum_store(dir.path).error() == expected);
  CHECK_FALSE(exists(path));  // none of them made one
}

TEST_CASE("store_stats counts by state and command, and names the oldest pending", "[maintenance]") {
  Store s;
  auto stats = store_stats(s.path, now_ms());
  REQUIRE(stats.ok());
  const nlohmann::json& j = stats.value();
  CHECK(j["total"] == 3);
  CHECK(j["backlog"] == 1);
  CHECK(j["by_state"]["pending"] == 1);
  CHECK(j["by_state"]["completed"] == 1);
  CHECK(j["by_state"]["failed"] == 1);
  CHECK(j["by_state"]["canceled"] == 0);
  CHECK(j["by_command"]["create_user"]["total"] == 2);
  CHECK(j["by_command"]["update_user"]["failed"] == 1);
  CHECK(j["oldest_pending"]["id"] == s.pending.id);
  CHECK(j["created_last_1m"] == 3);
}

TEST_CASE("store_info counts the tables", "[maintenance]") {
  Store s;
  auto info = store_info(s.path);
  REQUIRE(info.ok());
  CHECK(info.value()["operations"] == 3);
  CHECK(info.value()["history"] == 5);
  CHECK(info.value()["unfinished"] == 1);
  CHECK(info.value()["schema_version"] == "1");
  CHECK(info.value()["db_bytes"].get<int64_t>() > 0);
}

TEST_CASE("store_operations and store_history read through the reader", "[maintenance]") {
  Store s;
  OperationFilter f;
  f.state = OpState::failed;
  auto ops = store_operations(s.path, f);
  REQUIRE(ops.ok());
  REQUIRE(ops.value().size() == 1);
  CHECK(ops.value()[0].id == s.failed.id);

  auto h = store_history(s.path, s.completed.id);
  REQUIRE(h.ok());
  REQUIRE(h.value().size() == 2);
  CHECK(h.value()[0].kind == HistoryKind::accepted);
  CHECK(h.value()[1].kind == HistoryKind::completed);
  std::string unknown = new_uuid_v7();
  CHECK(store_history(s.path, unknown).error() == "no operation " + unknown + " in " + s.path);
}

TEST_CASE("export_store hands over every operation with its history, in seq order", "[maintenance]") {
  Store s;
  std::vector<nlohmann::json> seen;
  auto n = export_store(s.path, [&](const nlohmann::json& op, int64_t done, int64_t total) {
    CHECK(total == 3);
    CHECK(done == static_cast<int64_t>(seen.size()) + 1);
    seen.push_back(op);
    return Status::success();
  });
  REQUIRE(n.ok());
  CHECK(n.value() == 3);
  REQUIRE(seen.size() == 3);
  CHECK(seen[0]["id"] == s.pending.id);
  CHECK(seen[0]["history"].size() == 1);
  CHECK(seen[1]["id"] == s.completed.id);
  CHECK(seen[1]["history"][1]["kind"] == "completed");

  SECTION("a sink's error stops the export with it") {
    int calls = 0;
    auto stopped = export_store(s.path, [&](const nlohmann::json&, int64_t, int64_t) -> Status {
      ++calls;
      return Error{"stdout closed"};
    });
    CHECK(stopped.error() == "stdout closed");
    CHECK(calls == 1);
  }
}

TEST_CASE("check_store_consistency finds nothing in a sound store and names what is broken", "[maintenance]") {
  Store s;
  auto ok = check_store_consistency(s.path);
  REQUIRE(ok.ok());
  CHECK(ok.value().empty());
  {
    SQLite::Database db(s.path, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM history WHERE kind = 'accepted' AND op_seq = " + std::to_string(s.completed.seq));
    db.exec("UPDATE operations SET code = NULL WHERE seq = " + std::to_string(s.failed.seq));
  }
  auto found = check_store_consistency(s.path);
  REQUIRE(found.ok());
  const auto& p = found.value();
  auto has = [&](const std::string& text) {
    return std::find(p.begin(), p.end(), text) != p.end();
  };
  CHECK(has("operation " + s.completed.id + ": no accepted history entry"));
  CHECK(has("operation " + s.completed.id + ": history starts with 'completed', not 'accepted'"));
  CHECK(has("operation " + s.failed.id + ": failed without a code"));
  CHECK(p.size() == 3);
}

TEST_CASE("prune_store deletes old terminal operations in batches, never unfinished ones", "[maintenance]") {
  Store s;
  std::vector<int64_t> totals;
  auto pruned = prune_store(s.path, now_ms() + 1000, 1, [&](int64_t total) { totals.push_back(total); });
  REQUIRE(pruned.ok());
  CHECK(pruned.value() == 2);
  CHECK(totals == std::vector<int64_t>{1, 2, 2});  // batches of one, the last one empty
  auto ops = store_operations(s.path, {});
  REQUIRE(ops.ok());
  REQUIRE(ops.value().size() == 1);
  CHECK(ops.value()[0].id == s.pending.id);
  CHECK(prune_store(s.path, 0).value() == 0);  // nothing is that old
}

TEST_CASE("vacuum_store refuses while the pid lock is held, and leaves no pid file of its own", "[maintenance]") {
  Store s;
  std::string pid_path = s.dir.path + "/asyncopsd.pid";
  {
    PidLock daemon;
    REQUIRE(daemon.acquire(pid_path).ok());
    auto refused = vacuum_store(s.dir.path);
    CHECK(refused.error() ==
          "asyncopsd is running on " + s.dir.path + " (" + pid_path + " is locked); stop it before vacuum");
  }
  CHECK_FALSE(exists(pid_path));  // the daemon's clean stop removed it
  auto done = vacuum_store(s.dir.path);
  REQUIRE(done.ok());
  CHECK(done.value().path == s.path);
  CHECK(done.value().bytes_after > 0);
  CHECK_FALSE(exists(pid_path));

  SECTION("a pid file left by an unclean stop stays, so the next start checks the store") {
    { PidLock crashed; REQUIRE(crashed.acquire(pid_path).ok()); crashed.keep_file(); }
    REQUIRE(exists(pid_path));
    REQUIRE(vacuum_store(s.dir.path).ok());
    CHECK(exists(pid_path));
  }
}

TEST_CASE("PidLock: one holder at a time, and a file found at start means an unclean stop", "[maintenance]") {
  TempDir dir;
  std::string path = dir.path + "/asyncopsd.pid";
  PidLock first;
  REQUIRE(first.acquire(path).ok());
  CHECK_FALSE(first.found_stale());
  PidLock second;
  Status refused = second.acquire(path);
  CHECK_FALSE(refused.ok());
  CHECK(second.held_elsewhere());
  CHECK(refused.error() == "another asyncopsd is running on this data dir (" + path + " is locked)");
}
