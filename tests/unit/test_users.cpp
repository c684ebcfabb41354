#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store_fixture.h"
#include "workers/services/users.h"
#include "workers/worker.h"
#include "command_of.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {
struct Users {
  TempDir dir;
  Service svc = users_service();
  SQLite::Database db{dir.path + "/users.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
  Users() { Worker::init_database(svc, db); }

  Command cmd(const std::string& name, const std::string& id, nlohmann::json payload) {
    Command c = asyncops::test::command_of(name, "users");
    c.params = {{"id", id}};
    c.payload = std::move(payload);
    return c;
  }
  Event run(const Command& c) { return Worker::handle(svc, db, c, "w"); }
  int count() { return db.execAndGet("SELECT count(*) FROM users").getInt(); }
};
}  // namespace

TEST_CASE("create_user stores the user and returns its representation", "[users]") {
  Users u;
  auto e = u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "user_created");
  CHECK(e.code == "success");
  CHECK(e.resource == "/users/u1");
  CHECK(e.data["email"] == "a@example.com");
  CHECK(e.data["name"] == "Ann");
  // The representation is exactly the stored row.
  SQLite::Statement row(u.db, "SELECT id, email, name, created_at, updated_at FROM users WHERE id = 'u1'");
  REQUIRE(row.executeStep());
  CHECK(e.data == nlohmann::json{{"id", row.getColumn(0).getString()},
                                 {"email", row.getColumn(1).getString()},
                                 {"name", row.getColumn(2).getString()},
                                 {"created_at", row.getColumn(3).getString()},
                                 {"updated_at", row.getColumn(4).getString()}});
}

TEST_CASE("duplicate email is rejected with email_in_use, whatever its case", "[users]") {
  Users u;
  u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  auto e = u.run(u.cmd("create_user", "u2", {{"email", "A@Example.com"}, {"name", "Al"}}));
  CHECK(e.state == OpState::rejected);
  CHECK(e.code == "email_in_use");
  CHECK(e.type == "create_user_rejected");
  CHECK(u.count() == 1);
}

TEST_CASE("a malformed email is rejected with invalid_email", "[users]") {
  Users u;
  for (const char* bad : {"plain", "a@b", "@example.com", "a@@example.com", "a b@example.com",
                          "a@-example.com", "a..b@example.com"}) {
    auto e = u.run(u.cmd("create_user", "u1", {{"email", bad}, {"name", "A"}}));
    CHECK(e.code == "invalid_email");
  }
  CHECK(is_valid_email("first.last+tag@sub.example.co.uk"));
}

TEST_CASE("update and delete of a missing user are rejected with user_not_found", "[users]") {
  Users u;
  CHECK(u.run(u.cmd("update_user", "nope", {{"name", "B"}})).code == "user_not_found");
  CHECK(u.run(u.cmd("delete_user", "nope", {})).code == "user_not_found");
}

TEST_CASE("update changes fields and delete marks the resource deleted", "[users]") {
  Users u;
  u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  auto e = u.run(u.cmd("update_user", "u1", {{"name", "Anne"}}));
  CHECK(e.state == OpState::completed);
  CHECK(e.data["name"] == "Anne");
  CHECK(e.data["email"] == "a@example.com");
  e = u.run(u.cmd("delete_user", "u1", {}));
  CHECK(e.state == OpState::completed);
  CHECK(e.deleted);
  CHECK(e.resource == "/users/u1");
  CHECK(u.count() == 0);
}

TEST_CASE("a redelivered command re-publishes its outcome with no second effect", "[users]") {
  Users u;
  auto c = u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}});
  auto first = u.run(c);
  c.attempt = 2;
  auto again = u.run(c);
  CHECK(again.state == first.state);
  CHECK(again.code == "success");
  CHECK(again.data == first.data);
  CHECK(again.attempt == 2);
  CHECK(u.count() == 1);
}

TEST_CASE("an unknown command fails with unknown_command", "[users]") {
  Users u;
  auto e = u.run(u.cmd("launch_rocket", "x", {}));
  CHECK(e.state == OpState::failed);
  CHECK(e.code == "unknown_command");
}

// Issue 15, item 4: events carry the user's version in users.db, so the
// read model can follow the service's own commit order.
TEST_CASE("every write of a user raises its version, and the event carries it", "[users][version]") {
  Users u;
  auto created = u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  CHECK(created.version == 1);
  auto first = u.run(u.cmd("update_user", "u1", {{"name", "Anna"}}));
  CHECK(first.version == 2);
  auto second_cmd = u.cmd("update_user", "u1", {{"name", "Annie"}});
  auto second = u.run(second_cmd);
  CHECK(second.version == 3);
  CHECK(u.db.execAndGet("SELECT version FROM users WHERE id = 'u1'").getInt64() == 3);
  CHECK(nlohmann::json::parse(encode(second).body)["version"] == 3);
  CHECK_FALSE(second.data.contains("version"));  // not part of the representation
  auto rejected = u.run(u.cmd("update_user", "u1", {{"name", ""}}));
  CHECK(rejected.version == 0);  // nothing written
  auto gone = u.run(u.cmd("delete_user", "u1", nlohmann::json::object()));
  CHECK(gone.deleted);
  CHECK(gone.version == 4);  // above every update, so no update can revive it
  // A redelivery re-publishes the recorded version, not the current one.
  auto again = u.run(second_cmd);
  CHECK(again.version == 3);
  CHECK(again.data["name"] == "Annie");
}

TEST_CASE("a users.db made before the version column gains it", "[users][version]") {
  TempDir dir;
  std::string path = dir.path + "/users.db";
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE users(id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, "
            "name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID");
    db.exec("INSERT INTO users VALUES ('old', 'o@example.com', 'o@example.com', 'Old', 't', 't')");
  }
  Service svc = users_service();
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  Worker::init_database(svc, db);
  Command c;
  c.id = new_uuid_v7();
  c.name = "update_user";
  c.params = {{"id", "old"}};
  c.payload = {{"name", "Renamed"}};
  auto e = Worker::handle(svc, db, c, "w");
  CHECK(e.state == OpState::completed);
  CHECK(e.version == 2);
}

// Issue 15, item 3: once the daemon has given up on a request, a worker that
// still holds its command must not run it.
TEST_CASE("a fenced request id is never run afterwards", "[users][fence]") {
  Users u;
  auto create = u.cmd("create_user", "u1", {{"email", "f@example.com"}, {"name", "Fenced"}});
  ServiceDb sdb(u.db);
  SECTION("a fence recorded in the database: every later delivery re-publishes the give-up") {
    Worker::record_fences(sdb, {create.id}, "w");
    auto out = Worker::handle_batch(u.svc, sdb, {create}, "w2", nullptr, nullptr);
    REQUIRE(out.size() == 1);
    CHECK(out[0].state == OpState::failed);
    CHECK(out[0].code == "worker_timeout");
    CHECK(u.count() == 0);
    create.attempt = 6;
    CHECK(Worker::handle(u.svc, u.db, create, "w3").code == "worker_timeout");
    CHECK(u.count() == 0);
  }
  SECTION("a fence heard but not yet recorded: the batch records the give-up instead of running it") {
    auto other = u.cmd("create_user", "u2", {{"email", "g@example.com"}, {"name", "Free"}});
    auto out = Worker::handle_batch(u.svc, sdb, {create, other}, "w", nullptr,
                                    [&](const std::string& id) { return id == create.id; });
    REQUIRE(out.size() == 2);
    CHECK(out[0].code == "worker_timeout");
    CHECK(out[1].state == OpState::completed);
    CHECK(u.count() == 1);
    CHECK(Worker::handle(u.svc, u.db, create, "w").code == "worker_timeout");  // recorded
    CHECK(u.count() == 1);
  }
  SECTION("work done before the fence stands: the fence does not overwrite its outcome") {
    auto done = Worker::handle(u.svc, u.db, create, "w");
    REQUIRE(done.state == OpState::completed);
    Worker::record_fences(sdb, {create.id}, "w");
    auto again = Worker::handle(u.svc, u.db, create, "w");
    CHECK(again.state == OpState::completed);
    CHECK(again.version == 1);
    CHECK(u.count() == 1);
  }
}

TEST_CASE("a held write lock makes a batch fail fast, with nothing recorded", "[users][lock]") {
  Users u;
  SQLite::Database other(u.dir.path + "/users.db", SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // a worker stopped inside its transaction
  ServiceDb sdb(u.db);
  auto c = u.cmd("create_user", "u1", {{"email", "l@example.com"}, {"name", "Locked"}});
  auto started = std::chrono::steady_clock::now();
  CHECK_THROWS(Worker::handle_batch(u.svc, sdb, {c}, "w", nullptr, nullptr));
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(waited >= std::chrono::milliseconds(Worker::k_lock_wait_ms - 100));
  CHECK(waited < std::chrono::milliseconds(Worker::k_lock_wait_ms + 3000));
  CHECK_THROWS(Worker::record_fences(sdb, {c.id}, "w"));
  other.exec("ROLLBACK");
  CHECK(Worker::handle(u.svc, u.db, c, "w").state == OpState::completed);
}

TEST_CASE("a long batch is split into transactions that each hold the lock briefly", "[users][lock]") {
  Users u;
  Service slow = u.svc;
  // What another connection sees committed while each handler runs.
  SQLite::Database reader(u.dir.path + "/users.db", SQLite::OPEN_READONLY);
  std::vector<int> committed_before;
  slow.handlers["slow"] = [&](const Command&, ServiceDb&) {
    committed_before.push_back(reader.execAndGet("SELECT count(*) FROM handled").getInt());
    std::this_thread::sleep_for(std::chrono::milliseconds(Worker::k_transaction_budget_ms / 2 + 10));
    return Outcome::completed("slow_done", "", nullptr);
  };
  std::vector<Command> cmds;
  for (int i = 0; i < 6; ++i) cmds.push_back(u.cmd("slow", "x", nlohmann::json::object()));
  ServiceDb sdb(u.db);
  auto out = Worker::handle_batch(slow, sdb, cmds, "w", nullptr, nullptr);
  CHECK(out.size() == 6);
  // Each transaction takes commands for k_transaction_budget_ms: at most two
  // of these (fewer when a sleep overshoots), and commits before the next,
  // so the lock was free for others between them.
  REQUIRE(committed_before.size() == 6);
  CHECK(committed_before[0] == 0);
  for (size_t i = 1; i < committed_before.size(); ++i) {
    INFO("command " << i);
    CHECK(committed_before[i] >= static_cast<int>(i) - 1);
  }
  CHECK(u.db.execAndGet("SELECT count(*) FROM handled").getInt() == 6);
}

// Issue 18: a worker starts a granted command only while the grant holds
// (claim sent + lease_ms, on its own clock). One whose grant ran out is
// neither run nor recorded: its lease may be another worker's by now.
TEST_CASE("no command starts after its grant ran out, and none is recorded for it", "[users][claim]") {
  Users u;
  ServiceDb sdb(u.db);
  auto a = u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "A"}});
  auto b = u.cmd("create_user", "u2", {{"email", "b@example.com"}, {"name", "B"}});
  auto past = std::chrono::steady_clock::now() - std::chrono::milliseconds(1);
  auto out = Worker::handle_batch(u.svc, sdb, {a, b}, "w", nullptr, nullptr, past);
  CHECK(out.empty());
  CHECK(u.count() == 0);
  CHECK(Worker::recorded_outcomes(sdb, {a, b}, "w").empty());
  // Within its grant it runs, and a redelivery finds the recorded outcome
  // without a claim, with the new attempt and worker.
  auto future = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  out = Worker::handle_batch(u.svc, sdb, {a}, "w", nullptr, nullptr, future);
  REQUIRE(out.size() == 1);
  CHECK(out[0].state == OpState::completed);
  a.attempt = 2;
  auto recorded = Worker::recorded_outcomes(sdb, {a, b}, "w2");
  REQUIRE(recorded.size() == 1);
  CHECK(recorded.at(a.id).attempt == 2);
  CHECK(recorded.at(a.id).worker == "w2");
  CHECK(recorded.at(a.id).state == OpState::completed);
  CHECK(u.count() == 1);
}

TEST_CASE("a service database connection does not checkpoint inside its commits: a Checkpointer thread does",
          "[users][worker]") {
  // SQLite's automatic checkpoint ran inside a batch's COMMIT, every 1,000
  // pages, on the thread that publishes the outcomes (issue 11's p99).
  Users u;
  CHECK(u.db.execAndGet("PRAGMA wal_autocheckpoint").getInt() == 4 * Worker::k_wal_limit_pages);
  SQLite::Database other(u.dir.path + "/users.db", SQLite::OPEN_READWRITE);
  Worker::set_up_connection(other);
  CHECK(other.execAndGet("PRAGMA wal_autocheckpoint").getInt() == 4 * Worker::k_wal_limit_pages);
  // 1,500 pages in 30 commits: at SQLite's default the writer would have
  // checkpointed and started the WAL again at 1,000.
  u.db.exec("CREATE TABLE filler(b BLOB)");
  for (int i = 0; i < 30; ++i) {
    SQLite::Transaction t(u.db);
    for (int j = 0; j < 50; ++j) u.db.exec("INSERT INTO filler VALUES (zeroblob(4000))");
    t.commit();
  }
  SQLite::Statement st(other, "PRAGMA wal_checkpoint(PASSIVE)");
  REQUIRE(st.executeStep());
  CHECK(st.getColumn(1).getInt() >= 1500);  // frames in the WAL: none copied back by the writer
}
