// The SQLite store's sagas (issue 14; docs/design/sagas.md §4, §8): the
// rows around the pure saga::next, written in the caller's transaction.
#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/maintenance.h"
#include "store/operation.h"
#include "saga_fixture.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

struct SagaFixture {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::unique_ptr<SqliteStoreWriter> w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  std::unique_ptr<StoreReader> r = std::move(SqliteStoreReader::open(path).value());
  OperationRecord op = order_op();

  // Accepts the saga in one transaction, as the committer's accept does.
  StoreWriter::SagaApplied accept() {
    w->begin();
    w->insert_operation(&op);
    auto a = w->start_saga(op, order_plan(), now_ms());
    w->commit();
    return a;
  }
  StoreWriter::SagaApplied event(const Event& e, const EventSender& sender = {}) {
    w->begin();
    auto a = w->apply_step_event(e, now_ms(), sender);
    w->commit();
    return a;
  }
  StoreWriter::SagaApplied complete(const std::string& step, json data = nullptr) {
    return event(step_event(op.id + "." + step, OpState::completed, "success", std::move(data)));
  }
  std::string step_state(size_t i) {
    auto got = r->get_operation(op.id);
    REQUIRE(got);
    REQUIRE(got->steps.size() > i);
    return saga::to_string(got->steps[i].status.state);
  }
  std::string comp_state(size_t i) {
    auto got = r->get_operation(op.id);
    REQUIRE(got);
    REQUIRE(got->steps.size() > i);
    return saga::to_string(got->steps[i].status.compensation.state);
  }
  std::vector<std::string> history_kinds() {
    std::vector<std::string> out;
    for (const HistoryEntry& h : r->history(op.id)) out.push_back(std::string(to_string(h.kind)) + (h.step.empty() ? "" : ":" + h.step));
    return out;
  }
};

}  // namespace

TEST_CASE("a saga's accept writes its steps and dispatches the first step", "[store][saga]") {
  SagaFixture f;
  auto a = f.accept();
  CHECK(a.applied == StoreWriter::Applied::changed);
  REQUIRE(a.commands.size() == 1);
  const Command& c = a.commands[0];
  CHECK(c.id == f.op.id + ".reserve");
  CHECK(c.name == "reserve_stock");
  CHECK(c.service == "inventory");
  CHECK(c.payload == f.op.payload);
  CHECK(c.params == f.op.params);
  CHECK(c.attempt == 1);
  CHECK_FALSE(c.cancel);
  CHECK(c.saga.operation == f.op.id);
  CHECK(c.saga.step == "reserve");
  CHECK(c.steps == json::object());
  REQUIRE(a.changes.size() == 1);
  CHECK(a.changes[0].kind == HistoryKind::step_dispatched);
  CHECK(a.changes[0].step == "reserve");
  CHECK(a.changes[0].request_id == f.op.id + ".reserve");

  auto got = f.r->get_operation(f.op.id);
  REQUIRE(got);
  CHECK(got->step_count == 3);
  CHECK(got->state == OpState::pending);
  CHECK(f.step_state(0) == "pending");
  CHECK(f.step_state(1) == "waiting");
  CHECK(f.history_kinds() == std::vector<std::string>{"accepted", "step_dispatched:reserve"});
  // The document has steps, and the text form writes the same bytes.
  json doc = operation_json(*got);
  REQUIRE(doc["steps"].size() == 3);
  CHECK(doc["steps"][0]["state"] == "pending");
  CHECK(doc["steps"][1]["compensation"]["command"] == "refund_card");
  CHECK(doc["steps"][2]["compensation"].is_null());
  CHECK(operation_json_text(*got) == doc.dump());
  // A plain operation's document has no steps.
  auto plain = new_op();
  CHECK(operation_json(plain).count("steps") == 0);
  CHECK(operation_json_text(plain) == operation_json(plain).dump());
}

TEST_CASE("each step's completion dispatches the next with the data before it, and the last writes the read model",
          "[store][saga]") {
  SagaFixture f;
  f.accept();
  auto a = f.event(step_event(f.op.id + ".reserve", OpState::processing));
  CHECK(a.applied == StoreWriter::Applied::changed);
  CHECK(f.r->get_operation(f.op.id)->state == OpState::processing);
  a = f.complete("reserve", {{"reservation", "r-1"}});
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".charge");
  CHECK(a.commands[0].steps == json({{"reserve", {{"data", {{"reservation", "r-1"}}}}}}));
  CHECK(a.commands[0].lease == std::chrono::milliseconds(10000));
  CHECK(a.commands[0].max_attempts == 3);
  a = f.complete("charge", {{"charge", "ch-1"}});
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].steps.size() == 2);
  Event last = step_event(f.op.id + ".create", OpState::completed, "success", {{"id", "o-1"}, {"qty", 2}});
  last.resource = f.op.resource;
  a = f.event(last);
  CHECK(a.commands.empty());
  CHECK_FALSE(a.resource_refused);
  auto got = f.r->get_operation(f.op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::completed);
  CHECK(got->code == "success");
  CHECK(got->worker == "w1");
  auto res = f.r->get_resource(f.op.resource);
  REQUIRE(res);
  CHECK(res->body == json({{"id", "o-1"}, {"qty", 2}}));
  // The change that ends it is the last one, and only that one ends it.
  REQUIRE_FALSE(a.changes.empty());
  CHECK(a.changes.back().kind == HistoryKind::completed);
  CHECK(ends_operation(a.changes.back()));
  CHECK(a.changes.front().kind == HistoryKind::step_completed);
  CHECK_FALSE(ends_operation(a.changes.front()));
  // A duplicate is ignored and writes nothing.
  CHECK(f.complete("create").applied == StoreWriter::Applied::ignored);
}

TEST_CASE("a rejected step unwinds: the compensations in reverse order, then the step's outcome", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve", {{"reservation", "r-1"}});
  f.complete("charge", {{"charge", "ch-1"}});
  auto a = f.event(step_event(f.op.id + ".create", OpState::rejected, "out_of_stock"));
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".charge.undo");
  CHECK(a.commands[0].name == "refund_card");
  CHECK(a.commands[0].saga.compensation);
  CHECK_FALSE(a.commands[0].cancel);
  CHECK(a.commands[0].steps.contains("charge"));  // what it undoes
  CHECK(f.comp_state(1) == "pending");
  CHECK(f.comp_state(0) == "waiting");
  a = f.complete("charge.undo");
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".reserve.undo");
  a = f.complete("reserve.undo");
  CHECK(a.commands.empty());
  auto got = f.r->get_operation(f.op.id);
  REQUIRE(got);
  CHECK(got->state == OpState::rejected);
  CHECK(got->code == "out_of_stock");
  CHECK(f.history_kinds() ==
        std::vector<std::string>{"accepted", "step_dispatched:reserve", "step_completed:reserve",
                                 "processing", "step_dispatched:charge", "step_completed:charge",
                                 "step_dispatched:create", "step_rejected:create", "compensation_dispatched:charge",
                                 "compensation_completed:charge", "compensation_dispatched:reserve",
                                 "compensation_completed:reserve", "rejected"});
  // The resource the accept claimed was not made: nobody owns it.
  CHECK_FALSE(f.r->get_resource(f.op.resource));
}

TEST_CASE("an event and the next step commit together: a rolled-back batch shows neither", "[store][saga]") {
  SagaFixture f;
  f.accept();
  int64_t seq_before = f.w->latest_history_seq();
  f.w->begin();
  auto a = f.w->apply_step_event(step_event(f.op.id + ".reserve", OpState::completed, "success", {{"r", 1}}),
                                 now_ms());
  REQUIRE(a.commands.size() == 1);  // within the transaction, the next step is pending
  f.w->rollback();
  CHECK(f.step_state(0) == "pending");
  CHECK(f.step_state(1) == "waiting");
  CHECK(f.history_kinds() == std::vector<std::string>{"accepted", "step_dispatched:reserve"});
  CHECK(f.r->changes_after(seq_before, 100).empty());
  // Applied again, and committed: both.
  a = f.complete("reserve", {{"r", 1}});
  REQUIRE(a.commands.size() == 1);
  CHECK(f.step_state(0) == "completed");
  CHECK(f.step_state(1) == "pending");
}

TEST_CASE("a step's event from a sender that may not serve the step's service is rejected", "[store][saga]") {
  SagaFixture f;
  f.accept();
  EventSender payments_only{{"payments"}};
  auto a = f.event(step_event(f.op.id + ".reserve", OpState::completed), payments_only);
  CHECK(a.applied == StoreWriter::Applied::rejected);
  CHECK(f.step_state(0) == "pending");
  CHECK(f.event(step_event(f.op.id + ".reserve", OpState::completed), EventSender{{"inventory"}}).applied ==
        StoreWriter::Applied::changed);
}

TEST_CASE("unknown, plain and never-sent step ids change nothing", "[store][saga]") {
  SagaFixture f;
  f.accept();
  CHECK(f.event(step_event(new_uuid_v7() + ".reserve", OpState::completed)).applied ==
        StoreWriter::Applied::unknown_operation);
  CHECK(f.event(step_event(f.op.id + ".nosuch", OpState::completed)).applied == StoreWriter::Applied::ignored);
  // A forged completion of a step never sent cannot cause a compensation.
  CHECK(f.event(step_event(f.op.id + ".charge", OpState::completed)).applied == StoreWriter::Applied::ignored);
  CHECK(f.event(step_event(f.op.id + ".reserve.undo", OpState::completed)).applied ==
        StoreWriter::Applied::ignored);
  auto plain = new_op();
  f.w->begin();
  f.w->insert_operation(&plain);
  auto a = f.w->apply_step_event(step_event(plain.id + ".reserve", OpState::completed), now_ms());
  CHECK(a.applied == StoreWriter::Applied::unknown_operation);
  CHECK(f.w->request_saga_cancel(plain.id, now_ms()).applied == StoreWriter::Applied::ignored);
  f.w->commit();
}

TEST_CASE("a last step naming another resource completes the saga without the read model", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve");
  f.complete("charge");
  Event last = step_event(f.op.id + ".create", OpState::completed, "success", {{"id", "x"}});
  last.resource = "/orders/someone-elses";
  auto a = f.event(last);
  CHECK(a.applied == StoreWriter::Applied::changed);
  CHECK(a.resource_refused);
  CHECK(f.r->get_operation(f.op.id)->state == OpState::completed);
  CHECK_FALSE(f.r->get_resource("/orders/someone-elses"));
  CHECK_FALSE(f.r->get_resource(f.op.resource));
}

TEST_CASE("a step's give-up settles it, and the service's canceled answer fails it and unwinds", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve", {{"reservation", "r-1"}});
  f.w->begin();
  auto a = f.w->apply_step_gave_up(f.op.id + ".charge", 3, now_ms());
  f.w->commit();
  CHECK(a.applied == StoreWriter::Applied::changed);
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".charge");
  CHECK(a.commands[0].cancel);
  CHECK(a.commands[0].attempt == 4);
  CHECK(a.commands[0].max_attempts == k_unlimited_attempts);
  CHECK(f.step_state(1) == "settling");
  CHECK(f.r->get_operation(f.op.id)->state == OpState::processing);
  a = f.event(step_event(f.op.id + ".charge", OpState::canceled, "canceled"));
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".reserve.undo");
  CHECK(f.step_state(1) == "failed");
  f.complete("reserve.undo");
  auto got = f.r->get_operation(f.op.id);
  CHECK(got->state == OpState::failed);
  CHECK(got->code == "worker_timeout");
}

TEST_CASE("a compensation's give-up ends the saga compensation_failed", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve");
  f.event(step_event(f.op.id + ".charge", OpState::rejected, "card_declined"));
  f.w->begin();
  auto a = f.w->apply_step_gave_up(f.op.id + ".reserve.undo", 5, now_ms());
  f.w->commit();
  CHECK(a.commands.empty());
  auto got = f.r->get_operation(f.op.id);
  CHECK(got->state == OpState::failed);
  CHECK(got->code == "compensation_failed");
  CHECK(got->message.find("reserve") != std::string::npos);
  CHECK(f.comp_state(0) == "failed");
}

TEST_CASE("a saga's cancel names the step in flight, and its canceled outcome unwinds", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve");
  f.w->begin();
  auto a = f.w->request_saga_cancel(f.op.id, now_ms());
  f.w->commit();
  CHECK(a.applied == StoreWriter::Applied::changed);
  CHECK(a.cancel == std::vector<std::string>{f.op.id + ".charge"});
  REQUIRE(a.changes.size() == 1);
  CHECK(a.changes[0].kind == HistoryKind::cancel_requested);
  CHECK(f.r->get_operation(f.op.id)->cancel_requested);
  f.w->begin();
  CHECK(f.w->request_saga_cancel(f.op.id, now_ms()).applied == StoreWriter::Applied::ignored);  // once
  f.w->commit();
  a = f.event(step_event(f.op.id + ".charge", OpState::canceled, "canceled"));
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".reserve.undo");
  f.complete("reserve.undo");
  auto got = f.r->get_operation(f.op.id);
  CHECK(got->state == OpState::canceled);
  CHECK(f.step_state(2) == "skipped");
}

TEST_CASE("the dispatch record of a step id raises its attempt, and a redelivery is history", "[store][saga]") {
  SagaFixture f;
  f.accept();
  Change c;
  f.w->begin();
  CHECK(f.w->apply_dispatched(f.op.id + ".reserve", 1, now_ms(), &c) == StoreWriter::Applied::ignored);
  CHECK(f.w->apply_dispatched(f.op.id + ".reserve", 2, now_ms(), &c) == StoreWriter::Applied::changed);
  CHECK(c.kind == HistoryKind::step_redelivered);
  CHECK(c.step == "reserve");
  CHECK(c.request_id == f.op.id + ".reserve");
  CHECK(f.w->apply_dispatched(f.op.id + ".reserve", 2, now_ms(), &c) == StoreWriter::Applied::ignored);
  CHECK(f.w->apply_dispatched(f.op.id + ".charge", 2, now_ms(), &c) == StoreWriter::Applied::ignored);  // waiting
  f.w->commit();
  auto got = f.r->get_operation(f.op.id);
  CHECK(got->steps[0].status.attempt == 2);
  CHECK(got->attempt == 2);
  CHECK(f.history_kinds().back() == "step_redelivered:reserve");
}

TEST_CASE("after a restart resume_saga sends the step in flight again, as attempt 2 at least", "[store][saga]") {
  SagaFixture f;
  f.accept();
  f.complete("reserve", {{"reservation", "r-1"}});
  f.w.reset();  // the daemon stops
  auto w = std::move(SqliteStoreWriter::open(f.path, SyncMode::normal).value());
  auto unfinished = w->unfinished(10, 0);
  REQUIRE(unfinished.size() == 1);
  CHECK(unfinished[0].step_count == 3);
  w->begin();
  auto a = w->resume_saga(f.op.id, 5, now_ms());
  w->commit();
  REQUIRE(a.commands.size() == 1);
  CHECK(a.commands[0].id == f.op.id + ".charge");
  CHECK(a.commands[0].attempt == 2);
  CHECK(a.commands[0].steps == json({{"reserve", {{"data", {{"reservation", "r-1"}}}}}}));
  CHECK(a.commands[0].payload == f.op.payload);
}

TEST_CASE("changes and history carry the step, and forget and prune delete the steps", "[store][saga]") {
  SagaFixture f;
  f.accept();
  auto changes = f.r->changes_after(0, 100, f.op.id);
  REQUIRE(changes.size() == 2);
  CHECK(changes[1].kind == HistoryKind::step_dispatched);
  CHECK(changes[1].step == "reserve");
  CHECK(changes[1].request_id == f.op.id + ".reserve");
  CHECK(changes[1].op.steps.size() == 3);
  CHECK(changes[0].step.empty());
  auto h = f.r->history(f.op.id);
  CHECK(history_json(h[1])["step"] == "reserve");
  CHECK(history_json(h[0])["step"].is_null());

  f.event(step_event(f.op.id + ".reserve", OpState::rejected, "out_of_stock"));
  REQUIRE(f.r->get_operation(f.op.id)->state == OpState::rejected);
  auto count_steps = [&] {
    SQLite::Database db(f.path, SQLite::OPEN_READONLY);
    SQLite::Statement st(db, "SELECT count(*) FROM saga_steps");
    st.executeStep();
    return st.getColumn(0).getInt();
  };
  CHECK(count_steps() == 3);
  f.w->begin();
  CHECK(f.w->forget(f.op.id) == StoreWriter::Applied::changed);
  f.w->commit();
  CHECK(count_steps() == 0);

  SagaFixture g;
  g.accept();
  g.event(step_event(g.op.id + ".reserve", OpState::rejected, "out_of_stock"));
  g.w->begin();
  CHECK(g.w->prune(now_ms() + 1000, 10) == 1);
  g.w->commit();
  SQLite::Database db(g.path, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, "SELECT count(*) FROM saga_steps");
  st.executeStep();
  CHECK(st.getColumn(0).getInt() == 0);
}

TEST_CASE("a store from before sagas gains saga_steps, operations.steps and history.step", "[store][saga]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  OperationRecord old = new_op();
  {
    auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
    w->begin();
    w->insert_operation(&old);
    w->commit();
  }
  {
    // Take the store back to before this change.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("DROP TABLE saga_steps");
    db.exec("ALTER TABLE operations DROP COLUMN steps");
    db.exec("ALTER TABLE history DROP COLUMN step");
  }
  REQUIRE(init_store(path, SyncMode::normal).ok());
  REQUIRE(init_store(path, SyncMode::normal).ok());  // idempotent
  auto r = std::move(SqliteStoreReader::open(path).value());
  auto got = r->get_operation(old.id);
  REQUIRE(got);
  CHECK(got->step_count == 0);
  CHECK(got->steps.empty());
  CHECK(r->history(old.id).at(0).step.empty());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  CHECK(db.tableExists("saga_steps"));
}

TEST_CASE("store check finds a saga operation whose steps' rows are missing", "[store][saga][maintenance]") {
  SagaFixture f;
  f.accept();
  f.w.reset();
  auto sound = check_store_consistency(f.path);
  REQUIRE(sound.ok());
  CHECK(sound.value().empty());
  {
    SQLite::Database db(f.path, SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM saga_steps WHERE idx = 2");
  }
  auto found = check_store_consistency(f.path);
  REQUIRE(found.ok());
  REQUIRE(found.value().size() == 1);
  CHECK(found.value()[0] == "operation " + f.op.id + ": 3 steps, but 2 saga_steps rows");
}

TEST_CASE("store export writes a saga's steps and each history entry's step", "[store][saga][maintenance]") {
  SagaFixture f;
  f.accept();
  f.w.reset();
  std::vector<json> docs;
  auto done = export_store(f.path, [&](const json& j, int64_t, int64_t) -> Status {
    docs.push_back(j);
    return Status::success();
  });
  REQUIRE(done.ok());
  REQUIRE(docs.size() == 1);
  CHECK(docs[0]["steps"].size() == 3);
  CHECK(docs[0]["history"][1]["step"] == "reserve");
}

TEST_CASE("a saga's own id moves nothing: only its steps' ids do", "[store][saga]") {
  SagaFixture f;
  f.accept();
  Change c;
  f.w->begin();
  CHECK(f.w->apply_event(step_event(f.op.id, OpState::completed, "success"), now_ms(), &c) ==
        StoreWriter::Applied::rejected);
  CHECK(f.w->apply_dispatched(f.op.id, 2, now_ms(), &c) == StoreWriter::Applied::ignored);
  CHECK(f.w->request_cancel(f.op.id, now_ms(), &c) == StoreWriter::Applied::ignored);
  f.w->commit();
  auto got = f.r->get_operation(f.op.id);
  CHECK(got->state == OpState::pending);
  CHECK_FALSE(got->cancel_requested);
  CHECK(f.history_kinds() == std::vector<std::string>{"accepted", "step_dispatched:reserve"});
}
