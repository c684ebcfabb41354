#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {
struct Fixture {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::unique_ptr<SqliteStoreWriter> w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  std::unique_ptr<StoreReader> r = std::move(SqliteStoreReader::open(path).value());

  OperationRecord insert(OperationRecord op) {
    w->begin();
    w->insert_operation(&op);
    w->commit();
    return op;
  }
  StoreWriter::Applied apply(const Event& e, Change* c = nullptr) {
    Change scratch;
    w->begin();
    auto a = w->apply_event(e, now_ms(), c ? c : &scratch);
    w->commit();
    return a;
  }
  // The stored body of the resource at path; the test stops if there is none.
  nlohmann::json resource_body(const std::string& path) {
    auto res = r->get_resource(path);
    REQUIRE(res);
    return res->body;
  }
  // The dispatch mark of attempt, in a transaction of its own.
  StoreWriter::Applied dispatch(const std::string& id, int attempt, Change* c) {
    w->begin();
    auto a = w->apply_dispatched(id, attempt, now_ms(), c);
    w->commit();
    return a;
  }
};
}  // namespace

TEST_CASE("an inserted operation reads back with an accepted history entry", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  CHECK(op.seq > 0);
  auto got = f.r->get_operation(op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::pending);
  CHECK(got->payload == op.payload);
  auto h = f.r->history(op.id);
  REQUIRE(h.size() == 1);
  CHECK(h[0].kind == HistoryKind::accepted);
  CHECK_FALSE(f.r->get_operation(new_uuid_v7()));
}

TEST_CASE("the stored text of params and payload, given to a command, encodes as its trees do",
          "[store]") {
  Fixture f;
  OperationRecord op = new_op();
  op.payload = {{"email", "a@example.com"}, {"name", "\u00c5sa \"q\""}, {"tags", {1, 2.5, nullptr, true}}};
  OperationRecord kept = op;
  StoreWriter::StoredTexts texts;
  f.w->begin();
  auto inserted = f.w->insert_operation(&op, nullptr, &texts);
  f.w->commit();
  REQUIRE(std::holds_alternative<Change>(inserted));
  CHECK(texts.params == kept.params.dump());
  CHECK(texts.payload == kept.payload.dump());
  CHECK(f.r->get_operation(kept.id)->payload == kept.payload);
  Command cmd = take_command(std::get<Change>(inserted).op);
  cmd.params_text = texts.params;
  cmd.payload_text = texts.payload;
  Command from_trees = cmd;
  from_trees.params_text.clear();
  from_trees.payload_text.clear();
  CHECK(encode(cmd).body == encode(from_trees).body);
  auto back = decode_command(k_kind_command, encode(cmd).body);
  REQUIRE(back);
  CHECK(back->payload == kept.payload);
  CHECK(back->params == kept.params);
}

TEST_CASE("events move an operation forward and fill the read model in one step", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  CHECK(f.apply(event_for(op, OpState::processing)) == StoreWriter::Applied::changed);
  auto done = event_for(op, OpState::completed);
  done.data = {{"id", "u1"}, {"email", "a@example.com"}};
  Change c;
  CHECK(f.apply(done, &c) == StoreWriter::Applied::changed);
  CHECK(c.op.state == OpState::completed);
  CHECK(c.op.code == "success");
  CHECK(f.resource_body(op.resource) == done.data);
  auto h = f.r->history(op.id);
  REQUIRE(h.size() == 3);
  CHECK(h[1].kind == HistoryKind::processing);
  CHECK(h[2].kind == HistoryKind::completed);
  CHECK(h[0].seq < h[1].seq);
  CHECK(h[1].seq < h[2].seq);
}

TEST_CASE("a terminal operation never moves again", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  f.apply(event_for(op, OpState::rejected, "email_in_use"));
  CHECK(f.apply(event_for(op, OpState::completed)) == StoreWriter::Applied::ignored);
  CHECK(f.apply(event_for(op, OpState::processing)) == StoreWriter::Applied::ignored);
  auto got = f.r->get_operation(op.id);
  CHECK(got->state == OpState::rejected);
  CHECK(got->code == "email_in_use");
  CHECK_FALSE(f.r->get_resource(op.resource));
}

TEST_CASE("an event for an unknown operation is reported, not applied", "[store]") {
  Fixture f;
  auto ghost = new_op();
  CHECK(f.apply(event_for(ghost, OpState::completed)) == StoreWriter::Applied::unknown_operation);
}

TEST_CASE("a deletion event removes the resource from the read model", "[store]") {
  Fixture f;
  auto create = f.insert(new_op());
  auto created = event_for(create, OpState::completed);
  created.data = {{"id", "x"}};
  f.apply(created);
  REQUIRE(f.r->get_resource(create.resource));
  auto del = new_op("delete_user");
  del.resource = "";
  del.origin = "DELETE " + create.resource;  // as the gateway records it
  del = f.insert(del);
  Event gone = event_for(del, OpState::completed);
  gone.resource = create.resource;
  gone.deleted = true;
  f.apply(gone);
  CHECK_FALSE(f.r->get_resource(create.resource));
}

TEST_CASE("listing pages newest first with a stable keyset cursor", "[store]") {
  Fixture f;
  std::vector<OperationRecord> ops;
  for (int i = 0; i < 5; ++i) ops.push_back(f.insert(new_op(i % 2 ? "update_user" : "create_user")));
  OperationFilter filter;
  filter.limit = 2;
  auto page1 = f.r->list_operations(filter);
  REQUIRE(page1.size() == 2);
  CHECK(page1[0].id == ops[4].id);
  filter.before_seq = page1[1].seq;
  f.insert(new_op());  // a new arrival must not shift the next page
  auto page2 = f.r->list_operations(filter);
  REQUIRE(page2.size() == 2);
  CHECK(page2[0].id == ops[2].id);
  filter = {};
  filter.name = "update_user";
  CHECK(f.r->list_operations(filter).size() == 2);
  filter = {};
  filter.state = OpState::completed;
  CHECK(f.r->list_operations(filter).empty());
}

TEST_CASE("unfinished lists the operations to redispatch after a restart", "[store]") {
  Fixture f;
  auto a = f.insert(new_op());
  auto b = f.insert(new_op());
  f.apply(event_for(a, OpState::completed));
  auto open = f.w->unfinished(100, 0);
  REQUIRE(open.size() == 1);
  CHECK(open[0].id == b.id);
}

TEST_CASE("reader pool hands out connections and takes them back", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  ReaderPool pool(f.path);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    CHECK(a->get_operation(op.id));
    CHECK(b->get_operation(op.id));
  }
  CHECK(pool.acquire()->get_operation(op.id));
}

TEST_CASE("dispatch is recorded while pending, as redelivered on a later attempt", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  Change c;
  f.w->begin();
  CHECK(f.w->apply_dispatched(op.id, 1, now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::dispatched);
  CHECK(f.w->apply_dispatched(op.id, 2, now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::redelivered);
  CHECK(c.op.attempt == 2);
  f.w->commit();
  f.apply(event_for(op, OpState::processing));
  CHECK(f.dispatch(op.id, 3, &c) == StoreWriter::Applied::ignored);
  CHECK(f.w->latest_history_seq() == 4);
}

TEST_CASE("a redelivery's dispatch mark overtaken by the worker's processing is still recorded", "[store]") {
  Fixture f;
  auto op = f.insert(new_op());
  Change c;
  CHECK(f.dispatch(op.id, 1, &c) == StoreWriter::Applied::changed);
  // Attempt 2 was sent; its worker answered before the mark reached the writer.
  auto e = event_for(op, OpState::processing);
  e.attempt = 2;
  f.apply(e);
  f.w->begin();
  CHECK(f.w->apply_dispatched(op.id, 2, now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::redelivered);
  CHECK(c.op.state == OpState::processing);
  // Once only, and never for an attempt that is not the running one.
  CHECK(f.w->apply_dispatched(op.id, 2, now_ms(), &c) == StoreWriter::Applied::ignored);
  CHECK(f.w->apply_dispatched(op.id, 3, now_ms(), &c) == StoreWriter::Applied::ignored);
  f.w->commit();
  CHECK(f.w->latest_history_seq() == 4);
}

TEST_CASE("changes_after rebuilds each change's operation, globally or for one operation", "[store]") {
  Fixture f;
  auto a = f.insert(new_op());
  auto b = f.insert(new_op());
  f.apply(event_for(a, OpState::processing));
  f.apply(event_for(a, OpState::completed));
  auto all = f.r->changes_after(0, 100);
  REQUIRE(all.size() == 4);
  CHECK(all[2].kind == HistoryKind::processing);
  CHECK(all[2].op.state == OpState::processing);
  CHECK(all[2].op.id == a.id);
  auto mine = f.r->changes_after(all[0].seq, 100, a.id);
  REQUIRE(mine.size() == 2);
  CHECK(mine[1].op.state == OpState::completed);
  CHECK(mine[1].op.code == "success");
  CHECK(f.r->changes_after(all[3].seq, 100).empty());
  (void)b;
}

TEST_CASE("a batch whose BEGIN fails leaves the writer able to begin again", "[store]") {
  // The writer's BEGIN and COMMIT are compiled once and run again for every
  // batch: one that failed must not stop the next.
  Fixture f;
  SQLite::Database other(f.path, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");  // holds the write lock: the writer's BEGIN IMMEDIATE is busy
  CHECK_THROWS_AS(f.w->begin(), SQLite::Exception);
  CHECK_THROWS_AS(f.w->begin(), SQLite::Exception);
  other.exec("COMMIT");
  OperationRecord op = f.insert(new_op());
  REQUIRE(f.r->get_operation(op.id));
  CHECK(f.apply(event_for(op, OpState::completed)) == StoreWriter::Applied::changed);
  CHECK(f.r->get_operation(op.id)->state == OpState::completed);
}

TEST_CASE("the writer's view of unfinished operations follows commits and forgets rollbacks", "[store]") {
  Fixture f;
  // Inserted, then rolled back: an event for it finds nothing.
  OperationRecord lost = new_op();
  f.w->begin();
  f.w->insert_operation(&lost);
  f.w->rollback();
  CHECK(f.apply(event_for(lost, OpState::processing)) == StoreWriter::Applied::unknown_operation);
  CHECK_FALSE(f.r->get_operation(lost.id));

  // A change rolled back is not remembered: the next event starts from the
  // committed state (pending), so "processing" applies again.
  auto op = f.insert(new_op());
  Change c;
  f.w->begin();
  REQUIRE(f.w->apply_event(event_for(op, OpState::processing), now_ms(), &c) == StoreWriter::Applied::changed);
  f.w->rollback();
  CHECK(f.r->get_operation(op.id)->state == OpState::pending);
  CHECK(f.apply(event_for(op, OpState::processing), &c) == StoreWriter::Applied::changed);
  CHECK(c.op.state == OpState::processing);

  // Cancel and dispatch marks carry through to the events that follow.
  f.w->begin();
  REQUIRE(f.w->request_cancel(op.id, now_ms(), &c) == StoreWriter::Applied::changed);
  f.w->commit();
  CHECK(f.apply(event_for(op, OpState::completed), &c) == StoreWriter::Applied::changed);
  CHECK(c.op.cancel_requested);
  CHECK(c.op.code == "success");
  // Terminal: it leaves the writer's view, and the table still says no.
  CHECK(f.apply(event_for(op, OpState::failed)) == StoreWriter::Applied::ignored);
  CHECK(f.r->get_operation(op.id)->state == OpState::completed);
}

TEST_CASE("a collection lists its own resources only, in path order, a page at a time", "[store]") {
  Fixture f;
  // Neighbours by sort order: "/users-x" and "/users0" sort just outside
  // "/users/", and "/users/a/notes/1" is in the collection "/users/a/notes".
  for (std::string path : {"/users/c", "/users/a", "/users/b", "/users-x/1", "/users0/1", "/usersX/1",
                           "/users/a/notes/1", "/teams/a"}) {
    OperationRecord op = new_op();
    op.resource = path;
    op = f.insert(op);
    Event e = event_for(op, OpState::completed);
    e.data = {{"path", path}};
    REQUIRE(f.apply(e) == StoreWriter::Applied::changed);
  }
  auto page = f.r->list_resources("/users", "", 2, std::nullopt);
  REQUIRE(page.size() == 2);
  CHECK(page[0].path == "/users/a");
  CHECK(page[1].path == "/users/b");
  page = f.r->list_resources("/users", page[1].path, 10, std::nullopt);
  REQUIRE(page.size() == 1);
  CHECK(page[0].path == "/users/c");
  CHECK(f.r->list_resources("/users/a/notes", "", 10, std::nullopt).size() == 1);
  CHECK(f.r->list_resources("/teams", "", 10, std::nullopt).size() == 1);
  CHECK(f.r->list_resources("/users-x", "", 10, std::nullopt).size() == 1);
}

TEST_CASE("history seqs never go back, even when the newest operations are forgotten", "[store]") {
  Fixture f;
  auto a = f.insert(new_op());
  Change done;
  REQUIRE(f.apply(event_for(a, OpState::completed), &done) == StoreWriter::Applied::changed);
  auto b = f.insert(new_op());
  Change last;
  REQUIRE(f.apply(event_for(b, OpState::completed), &last) == StoreWriter::Applied::changed);
  int64_t high = f.w->latest_history_seq();
  CHECK(high == last.seq);

  // Forget both, newest first, as `DELETE /operations/{id}` and a prune may.
  for (const auto& op : {b, a}) {
    f.w->begin();
    REQUIRE(f.w->forget(op.id) == StoreWriter::Applied::changed);
    f.w->commit();
  }
  CHECK_FALSE(f.r->get_operation(a.id));
  CHECK(f.r->history(b.id).empty());
  CHECK(f.r->changes_after(0, 100).empty());  // what is left of b's history is not shown
  CHECK(f.w->latest_history_seq() == high);

  // A new operation continues the sequence.
  auto c = f.insert(new_op());
  auto h = f.r->history(c.id);
  REQUIRE(h.size() == 1);
  CHECK(h[0].seq == high + 1);
}

namespace {
using Clock = std::chrono::steady_clock;
int64_t file_bytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}
void insert_batch(Fixture& f) {
  f.w->begin();
  for (int i = 0; i < 10; ++i) {
    OperationRecord op = new_op();
    op.payload = {{"pad", std::string(600, 'x')}};
    f.w->insert_operation(&op);
  }
  f.w->commit();
}
}  // namespace

TEST_CASE("alone, the writer starts the WAL again at four times the limit", "[store]") {
  // No Checkpointer: the writer's own safety net bounds the WAL.
  Fixture f;
  f.w->set_wal_limit_pages(64);
  int64_t largest = 0;
  for (int batch = 0; batch < 300; ++batch) {  // ~17 MB of WAL frames in all
    insert_batch(f);
    largest = std::max(largest, file_bytes(f.path + "-wal"));
  }
  // 256 frames (~1 MiB) plus one batch (under 100 pages), never the whole load.
  CHECK(largest < 1536 * 1024);
}

TEST_CASE("the Checkpointer asks the writer to start the WAL again past the limit", "[store]") {
  Fixture f;
  f.w->set_wal_limit_pages(64);
  std::atomic<int> asked{0};
  Checkpointer background(
      f.path, std::chrono::milliseconds(2),
      [&] {
        ++asked;
        f.w->want_wal_restart();
      },
      64);
  background.start();
  // Each restart is a checkpoint by the writer, between two transactions,
  // that copied every frame: the next transaction starts the WAL again. (How
  // large the file gets depends on how often the two checkpoints meet; the
  // test above bounds it without the Checkpointer.)
  for (auto deadline = Clock::now() + std::chrono::seconds(10); f.w->wal_restarts() < 3;) {
    REQUIRE(Clock::now() < deadline);
    insert_batch(f);
  }
  background.stop();
  CHECK(asked.load() >= 3);
}

// Issue 15, item 3: the daemon's give-up must not contradict what the
// service recorded.
TEST_CASE("a worker's real outcome supersedes failed/worker_timeout, with a history entry", "[store][supersede]") {
  Fixture f;
  auto op = f.insert(new_op());
  f.apply(event_for(op, OpState::processing));
  Event gave_up = event_for(op, OpState::failed, "worker_timeout");
  gave_up.resource = "";
  gave_up.worker = "asyncopsd";
  REQUIRE(f.apply(gave_up) == StoreWriter::Applied::changed);

  Event late = event_for(op, OpState::completed, "success");
  late.data = {{"id", "u1"}, {"name", "Late"}};
  late.version = 1;
  Change c;
  REQUIRE(f.apply(late, &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::superseded);
  CHECK(c.op.state == OpState::completed);
  CHECK(c.op.code == "success");
  auto got = f.r->get_operation(op.id);
  CHECK(got->state == OpState::completed);
  CHECK(got->code == "success");
  CHECK(f.resource_body(op.resource) == late.data);
  auto h = f.r->history(op.id);
  REQUIRE(h.size() == 4);
  CHECK(h[2].kind == HistoryKind::failed);
  CHECK(h[3].kind == HistoryKind::superseded);
  CHECK(h[3].state == OpState::completed);
  CHECK(h[3].message.find("supersedes failed/worker_timeout") != std::string::npos);
  auto changes = f.r->changes_after(h[2].seq, 10, op.id);
  REQUIRE(changes.size() == 1);
  CHECK(changes[0].kind == HistoryKind::superseded);

  // Now terminal for good: nothing moves it again.
  CHECK(f.apply(event_for(op, OpState::rejected, "user_exists")) == StoreWriter::Applied::ignored);
  CHECK(f.r->get_operation(op.id)->state == OpState::completed);
}

namespace {
// A new operation that has ended in state with code.
OperationRecord ended_op(Fixture& f, OpState state, const std::string& code) {
  auto op = f.insert(new_op());
  f.apply(event_for(op, state, code));
  return op;
}
}  // namespace

TEST_CASE("only failed/worker_timeout is superseded, and only by another outcome", "[store][supersede]") {
  Fixture f;
  // An operation ended as `first`; then `second` arrives for it.
  struct Case {
    const char* what;
    OpState first;
    const char* first_code;
    OpState second;
    const char* second_code;
    StoreWriter::Applied applied;
    OpState state_after;
    const char* code_after;
  };
  using A = StoreWriter::Applied;
  const Case cases[] = {
      {"a rejection replaces the give-up", OpState::failed, "worker_timeout", OpState::rejected, "email_in_use",
       A::changed, OpState::rejected, "email_in_use"},
      {"a fenced worker's own worker_timeout agrees: ignored", OpState::failed, "worker_timeout", OpState::failed,
       "worker_timeout", A::ignored, OpState::failed, "worker_timeout"},
      {"processing never reopens it", OpState::failed, "worker_timeout", OpState::processing, "", A::ignored,
       OpState::failed, "worker_timeout"},
      {"any other failure is final", OpState::failed, "handler_error", OpState::completed, "success", A::ignored,
       OpState::failed, "handler_error"},
      {"canceled is final", OpState::canceled, "canceled", OpState::completed, "success", A::ignored,
       OpState::canceled, "canceled"},
      {"completed is final", OpState::completed, "success", OpState::failed, "worker_timeout", A::ignored,
       OpState::completed, "success"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto op = ended_op(f, c.first, c.first_code);
    CHECK(f.apply(event_for(op, c.second, c.second_code)) == c.applied);
    CHECK(f.r->get_operation(op.id)->state == c.state_after);
    CHECK(f.r->get_operation(op.id)->code == c.code_after);
    // An ignored event adds no history: the insert's entry and the first outcome's stay.
    if (c.applied == A::ignored) CHECK(f.r->history(op.id).size() == 2);
  }
  SECTION("a superseding event must still name its own resource") {
    auto op = ended_op(f, OpState::failed, "worker_timeout");
    Event other = event_for(op, OpState::completed, "success");
    other.resource = "/users/someone-else";
    CHECK(f.apply(other) == StoreWriter::Applied::rejected);
    CHECK(f.r->get_operation(op.id)->state == OpState::failed);
  }
}

// Issue 15, item 4: the service's commit order decides, not the order in
// which the daemon accepted the commands.
TEST_CASE("the read model keeps the write with the highest service version", "[store][version]") {
  Fixture f;
  auto create = f.insert(new_op());
  // An update of the created user, accepted now.
  auto update = [&] {
    auto op = new_op("update_user");
    op.resource = create.resource;
    return f.insert(op);
  };
  auto older = update();
  auto newer = update();
  auto with = [](const OperationRecord& op, const std::string& name, int64_t version) {
    Event e = event_for(op, OpState::completed, "success");
    e.data = {{"name", name}};
    e.version = version;
    return e;
  };
  f.apply(with(create, "v1", 1));
  // The service applied the newer command first (version 2), and the older
  // one, redelivered, last (version 3): the older one's write is current.
  f.apply(with(newer, "newer", 2));
  f.apply(with(older, "older", 3));
  CHECK(f.resource_body(create.resource)["name"] == "older");

  SECTION("a lower version arriving late is skipped, whatever its operation's order") {
    auto late = update();
    f.apply(with(late, "stale", 2));
    CHECK(f.resource_body(create.resource)["name"] == "older");
  }
  SECTION("a delete carries a version, so a late update cannot revive the user") {
    auto del = new_op("delete_user");
    del.resource = "";
    del.origin = "DELETE " + create.resource;
    del = f.insert(del);
    Event gone = event_for(del, OpState::completed, "success");
    gone.resource = create.resource;
    gone.deleted = true;
    gone.version = 5;
    f.apply(gone);
    CHECK_FALSE(f.r->get_resource(create.resource));
    auto late = update();
    f.apply(with(late, "revived", 4));
    CHECK_FALSE(f.r->get_resource(create.resource));
  }
  SECTION("events without a version fall back to the operations' order") {
    auto latest = update();
    f.apply(with(latest, "unversioned", 0));
    CHECK(f.resource_body(create.resource)["name"] == "unversioned");
    f.apply(with(older, "older-again", 0));  // an older operation: skipped
    CHECK(f.resource_body(create.resource)["name"] == "unversioned");
  }
}

namespace {
// A store made by this version, then changed by sql into what an older
// version left.
void make_store_then(const std::string& path, std::initializer_list<const char*> sql) {
  {
    auto w = SqliteStoreWriter::open(path, SyncMode::normal);
    REQUIRE(w);
  }
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  for (const char* statement : sql) db.exec(statement);
}
}  // namespace

TEST_CASE("a store made before resources.version gains the column at open", "[store][version]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  make_store_then(path, {"ALTER TABLE resources DROP COLUMN version"});
  auto w = SqliteStoreWriter::open(path, SyncMode::normal);
  REQUIRE(w);
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM pragma_table_info('resources') WHERE name = 'version'").getInt() == 1);
}

TEST_CASE("only operations with an owner are in the owner index, and a filter by owner uses it",
          "[store][owner]") {
  Fixture f;
  auto mine = new_op();
  mine.owner = "alice";
  mine = f.insert(mine);
  auto nobody = f.insert(new_op());
  auto other = new_op();
  other.owner = "bob";
  f.insert(other);

  OperationFilter by_alice;
  by_alice.owner = "alice";
  auto alice = f.r->list_operations(by_alice);
  REQUIRE(alice.size() == 1);
  CHECK(alice[0].id == mine.id);
  OperationFilter by_nobody;
  by_nobody.owner = "";
  auto none = f.r->list_operations(by_nobody);
  REQUIRE(none.size() == 1);
  CHECK(none[0].id == nobody.id);
  CHECK(f.r->stats(now_ms(), std::string("alice")).total == 1);
  CHECK(f.r->stats(now_ms(), std::string("")).total == 1);

  SQLite::Database db(f.path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM operations INDEXED BY operations_by_owner_set WHERE owner <> ''")
            .getInt() == 2);
  // SQLite's side of it: the forms that list_operations and the stats
  // build for a non-empty owner (sqlite_store.cpp, store_stats.cpp) use the
  // partial index. Without the repeated term, neither would.
  auto plan_of = [&](const std::string& sql) {
    SQLite::Statement plan(db, "EXPLAIN QUERY PLAN " + sql);
    std::string detail;
    while (plan.executeStep()) detail += plan.getColumn(3).getString() + "\n";
    return detail;
  };
  CHECK(plan_of("SELECT seq FROM operations WHERE owner = ? AND owner <> '' ORDER BY seq DESC LIMIT 50")
            .find("operations_by_owner_set") != std::string::npos);
  CHECK(plan_of("SELECT h.kind, h.at FROM history h JOIN operations o ON o.seq = h.op_seq "
                "WHERE o.owner = ? AND o.owner <> '' ORDER BY h.seq DESC")
            .find("operations_by_owner_set") != std::string::npos);
  CHECK(plan_of("SELECT seq FROM operations WHERE owner = ? ORDER BY seq DESC LIMIT 50")
            .find("operations_by_owner_set") == std::string::npos);
}

TEST_CASE("a store with the old full owner index gets the partial one at open", "[store][owner]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  make_store_then(path, {"DROP INDEX operations_by_owner_set", "CREATE INDEX operations_by_owner ON operations(owner, seq)",
                         "INSERT INTO operations(id, name, service, state, origin, owner, created_at, updated_at) "
                         "VALUES ('op_old', 'create_user', 'users', 'completed', 'POST /users', 'alice', 1, 1)"});
  auto w = SqliteStoreWriter::open(path, SyncMode::normal);
  REQUIRE(w);
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM sqlite_master WHERE name = 'operations_by_owner'").getInt() == 0);
  CHECK(db.execAndGet("SELECT count(*) FROM operations INDEXED BY operations_by_owner_set WHERE owner <> ''")
            .getInt() == 1);
}

TEST_CASE("stats count by state and command and rate the last window of history", "[store][stats]") {
  Fixture f;
  auto a = f.insert(new_op("create_user"));
  auto b = f.insert(new_op("create_user"));
  auto other = new_op("delete_user");
  other.owner = "alice";
  other = f.insert(other);
  f.apply(event_for(a, OpState::completed, "success"));
  f.apply(event_for(b, OpState::rejected, "email_in_use"));
  int64_t now = now_ms();
  auto s = f.r->stats(now, std::nullopt);
  CHECK(s.total == 3);
  CHECK(s.counts["completed"] == 1);
  CHECK(s.counts["rejected"] == 1);
  CHECK(s.counts["pending"] == 1);
  CHECK(s.counts["failed"] == 0);
  CHECK(s.by_command["create_user"]["total"] == 2);
  CHECK(s.by_command["delete_user"]["pending"] == 1);
  CHECK(s.oldest_pending_id == other.id);
  CHECK(s.created_last_1m == 3);
  CHECK(s.window_counts["accepted"] == 3);
  CHECK(s.window_counts["completed"] == 1);
  CHECK(s.window_counts["rejected"] == 1);

  auto j = stats_json(s);
  CHECK(j["counts"]["pending"] == 1);
  CHECK(j["by_state"] == j["counts"]);
  CHECK(j["backlog"] == 1);
  CHECK(j["rates"]["window_s"] == 10);
  CHECK(j["rates"]["accepted"].get<double>() == Approx(0.3));
  CHECK(j["oldest_pending"]["id"] == other.id);

  // A minute later the window is empty; one owner sees only its own.
  auto later = f.r->stats(now + 60001, std::nullopt);
  CHECK(later.window_counts["accepted"] == 0);
  CHECK(later.created_last_1m == 0);
  CHECK(later.created_last_5m == 3);
  auto mine = f.r->stats(now, std::string("alice"));
  CHECK(mine.total == 1);
  CHECK(mine.window_counts["accepted"] == 1);
  CHECK(mine.window_counts["completed"] == 0);
}

TEST_CASE("every history kind is stored and shown as its name, and the name reads back as the kind", "[store]") {
  const std::pair<HistoryKind, const char*> names[] = {
      {HistoryKind::accepted, "accepted"},       {HistoryKind::dispatched, "dispatched"},
      {HistoryKind::redelivered, "redelivered"}, {HistoryKind::processing, "processing"},
      {HistoryKind::cancel_requested, "cancel_requested"}, {HistoryKind::completed, "completed"},
      {HistoryKind::rejected, "rejected"},       {HistoryKind::failed, "failed"},
      {HistoryKind::canceled, "canceled"},       {HistoryKind::superseded, "superseded"},
      {HistoryKind::late_outcome, "late_outcome"},
  };
  for (const auto& [kind, name] : names) {
    CHECK(std::string(to_string(kind)) == name);
    CHECK(parse_history_kind(name) == kind);
  }
  CHECK_FALSE(parse_history_kind("pending").has_value());
  CHECK_FALSE(parse_history_kind("").has_value());
  CHECK(history_kind_of(OpState::pending) == HistoryKind::accepted);
  for (OpState s : {OpState::processing, OpState::completed, OpState::rejected, OpState::failed, OpState::canceled}) {
    CHECK(std::string(to_string(history_kind_of(s))) == to_string(s));
  }
}

// Issue 18: an attempt that lost its lease may still finish, on another
// host, after the attempt that holds the lease ended the operation.
TEST_CASE("a late outcome from an older attempt changes nothing but goes into the history", "[store][late]") {
  Fixture f;
  auto op = f.insert(new_op());
  Event first = event_for(op, OpState::processing);
  first.attempt = 1;
  first.worker = "host-a";
  REQUIRE(f.apply(first) == StoreWriter::Applied::changed);
  // Attempt 2 is sent while the operation shows processing: not history,
  // but the stored attempt follows the send.
  Change sent;
  f.w->begin();
  CHECK(f.w->apply_dispatched(op.id, 2, now_ms(), &sent) == StoreWriter::Applied::ignored);
  f.w->commit();
  CHECK(f.r->get_operation(op.id)->attempt == 2);

  Event done = event_for(op, OpState::completed, "success");
  done.attempt = 2;
  done.worker = "host-b";
  done.data = {{"id", "u1"}};
  REQUIRE(f.apply(done) == StoreWriter::Applied::changed);

  Event late = event_for(op, OpState::rejected, "user_exists");
  late.attempt = 1;
  late.worker = "host-a";
  Change c;
  REQUIRE(f.apply(late, &c) == StoreWriter::Applied::late);
  CHECK(c.kind == HistoryKind::late_outcome);
  CHECK_FALSE(ends_operation(c));
  auto got = f.r->get_operation(op.id);
  CHECK(got->state == OpState::completed);
  CHECK(got->code == "success");
  CHECK(got->worker == "host-b");
  auto h = f.r->history(op.id);
  REQUIRE_FALSE(h.empty());
  CHECK(h.back().kind == HistoryKind::late_outcome);
  CHECK(h.back().state == OpState::completed);
  CHECK(h.back().message.find("from attempt 1 (worker host-a)") != std::string::npos);

  // The attempt that ended it, or a newer one, is a duplicate; progress is stale.
  Event again = done;
  CHECK(f.apply(again) == StoreWriter::Applied::ignored);
  Event progress = event_for(op, OpState::processing);
  progress.attempt = 1;
  CHECK(f.apply(progress) == StoreWriter::Applied::ignored);
  CHECK(f.r->history(op.id).size() == h.size());
}

TEST_CASE("a late outcome from a sender that may not serve the operation's service is rejected",
          "[store][late]") {
  Fixture f;
  auto op = f.insert(new_op());
  Event done = event_for(op, OpState::completed, "success");
  done.attempt = 2;
  REQUIRE(f.apply(done) == StoreWriter::Applied::changed);
  Event late = event_for(op, OpState::failed, "boom");
  late.attempt = 1;
  EventSender other;
  other.services = {"billing"};
  Change c;
  f.w->begin();
  CHECK(f.w->apply_event(late, now_ms(), &c, other) == StoreWriter::Applied::rejected);
  f.w->commit();
  auto h = f.r->history(op.id);
  CHECK(h.back().kind == HistoryKind::completed);
}

// An operation's row is written once per transaction, at commit or before
// anything reads the table directly (SqliteStoreWriter::Impl::flush_rows):
// what was read and stored must be what it was when every event wrote it.
TEST_CASE("dispatch, processing and outcome in one transaction store the row and every history entry",
          "[store][rows]") {
  Fixture f;
  auto op = f.insert(new_op());
  Change marked, started, ended;
  f.w->begin();
  REQUIRE(f.w->apply_dispatched(op.id, 1, 1000, &marked) == StoreWriter::Applied::changed);
  auto processing = event_for(op, OpState::processing);
  processing.attempt = 1;
  processing.worker = "w1";
  REQUIRE(f.w->apply_event(processing, 2000, &started) == StoreWriter::Applied::changed);
  // A duplicate `processing` in the same batch sees the new state, unwritten.
  CHECK(f.w->apply_event(processing, 2500, &started) == StoreWriter::Applied::ignored);
  auto done = event_for(op, OpState::completed);
  done.attempt = 1;
  done.data = {{"id", "u1"}};
  REQUIRE(f.w->apply_event(done, 3000, &ended) == StoreWriter::Applied::changed);
  // Terminal now, also before the row is written: nothing moves it.
  CHECK(f.w->apply_event(event_for(op, OpState::failed), 3500, &ended) == StoreWriter::Applied::ignored);
  f.w->commit();

  CHECK(marked.op.state == OpState::pending);
  CHECK(started.op.state == OpState::processing);
  CHECK(ended.op.state == OpState::completed);
  auto got = f.r->get_operation(op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::completed);
  CHECK(got->code == "success");
  CHECK(got->attempt == 1);
  CHECK(got->updated_at == 3000);
  CHECK(got->worker == "w1");
  CHECK(f.resource_body(op.resource) == done.data);
  auto h = f.r->history(op.id);
  REQUIRE(h.size() == 4);
  CHECK(h[1].kind == HistoryKind::dispatched);
  CHECK(h[2].kind == HistoryKind::processing);
  CHECK(h[3].kind == HistoryKind::completed);
  // The state index holds the stored state only: none of the intermediate ones.
  OperationFilter filter;
  for (OpState s : {OpState::pending, OpState::processing}) {
    filter.state = s;
    CHECK(f.r->list_operations(filter).empty());
  }
  filter.state = OpState::completed;
  CHECK(f.r->list_operations(filter).size() == 1);
}

TEST_CASE("the writer's own reads of operations see the rows not yet written", "[store][rows]") {
  Fixture f;
  auto a = f.insert(new_op());
  auto b = f.insert(new_op());
  f.w->begin();
  Change c;
  REQUIRE(f.w->apply_event(event_for(a, OpState::processing), now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(f.w->count_unfinished() == 2);
  REQUIRE(f.w->apply_event(event_for(a, OpState::completed), now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(f.w->count_unfinished() == 1);
  auto unfinished = f.w->unfinished(10, 0);
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].id == b.id);
  // Then a dispatch mark alone: only attempt and updated_at change.
  REQUIRE(f.w->apply_dispatched(b.id, 2, 7000, &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::redelivered);
  unfinished = f.w->unfinished(10, 0);
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].attempt == 2);
  CHECK(unfinished[0].updated_at == 7000);
  CHECK(unfinished[0].state == OpState::pending);
  f.w->commit();
  CHECK(f.r->get_operation(a.id)->state == OpState::completed);
  CHECK(f.r->get_operation(b.id)->attempt == 2);
}

TEST_CASE("a cancel request between a row's events keeps both the cancel and the newest state",
          "[store][rows]") {
  Fixture f;
  auto op = f.insert(new_op());
  Change c;
  f.w->begin();
  REQUIRE(f.w->apply_event(event_for(op, OpState::processing), 1000, &c) == StoreWriter::Applied::changed);
  REQUIRE(f.w->request_cancel(op.id, 2000, &c) == StoreWriter::Applied::changed);
  CHECK(c.op.state == OpState::processing);
  REQUIRE(f.w->apply_event(event_for(op, OpState::canceled), 3000, &c) == StoreWriter::Applied::changed);
  CHECK(c.op.cancel_requested);
  f.w->commit();
  auto got = f.r->get_operation(op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::canceled);
  CHECK(got->cancel_requested);
  CHECK(got->updated_at == 3000);
}

TEST_CASE("rows not yet written are dropped with a rolled-back transaction", "[store][rows]") {
  Fixture f;
  auto op = f.insert(new_op());
  Change c;
  f.w->begin();
  REQUIRE(f.w->apply_dispatched(op.id, 1, 1000, &c) == StoreWriter::Applied::changed);
  REQUIRE(f.w->apply_event(event_for(op, OpState::completed), 2000, &c) == StoreWriter::Applied::changed);
  f.w->rollback();
  // The writer reads the committed row again: pending, so it moves again.
  CHECK(f.apply(event_for(op, OpState::processing), &c) == StoreWriter::Applied::changed);
  auto got = f.r->get_operation(op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::processing);
  CHECK(f.r->history(op.id).size() == 2);  // accepted, processing
}
