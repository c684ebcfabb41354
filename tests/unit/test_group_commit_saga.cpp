// The group committer runs sagas (issue 14; docs/design/sagas.md §13 step
// 4): a saga's accept, its steps' events, the dispatcher's give-ups and a
// client's cancel each commit what the saga decides, and hand what it
// dispatches and cancels to the hooks only after that commit.
#include <catch2/catch.hpp>

#include <future>
#include <mutex>

#include "daemon/daemon_events.h"
#include "daemon/group_commit.h"
#include "saga_fixture.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

// A committer whose hooks record what it hands over; every call waits for
// its own commit, so each step of a test sees exactly what it caused.
struct SagaCommitter {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::mutex m;
  std::vector<Command> commands;       // GUARDED_BY(m)
  std::vector<Change> changes;         // GUARDED_BY(m)
  std::vector<std::string> cancels;    // GUARDED_BY(m)
  std::vector<std::string> ended;      // GUARDED_BY(m)
  std::unique_ptr<GroupCommitter> gc;

  SagaCommitter() {
    GroupCommitter::Hooks h;
    h.on_changes = [this](const std::vector<Change>& c) {
      std::lock_guard<std::mutex> lock(m);
      changes.insert(changes.end(), c.begin(), c.end());
    };
    h.on_accepted = [this](std::vector<Command> c) {
      std::lock_guard<std::mutex> lock(m);
      for (Command& x : c) commands.push_back(std::move(x));
    };
    h.on_saga_cancel = [this](std::vector<std::string> ids) {
      std::lock_guard<std::mutex> lock(m);
      cancels.insert(cancels.end(), ids.begin(), ids.end());
    };
    h.on_leases_ended = [this](std::vector<std::string> ids) {
      std::lock_guard<std::mutex> lock(m);
      ended.insert(ended.end(), ids.begin(), ids.end());
    };
    gc = std::make_unique<GroupCommitter>(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()), h);
    gc->start();
  }

  // What the hooks got since the last call.
  std::vector<Command> take_commands() {
    std::lock_guard<std::mutex> lock(m);
    return std::exchange(commands, {});
  }
  std::vector<Change> take_changes() {
    std::lock_guard<std::mutex> lock(m);
    return std::exchange(changes, {});
  }
  std::vector<std::string> take_ended() {
    std::lock_guard<std::mutex> lock(m);
    return std::exchange(ended, {});
  }
  std::vector<std::string> take_cancels() {
    std::lock_guard<std::mutex> lock(m);
    return std::exchange(cancels, {});
  }

  // Returns once every job queued before it has committed and its hooks
  // have run: a job's caller is answered before its batch's hooks run, so
  // the first write may share that batch; the second starts only after.
  void sync() {
    REQUIRE(gc->run([](StoreWriter&, std::vector<Change>&) {}).ok());
    REQUIRE(gc->run([](StoreWriter&, std::vector<Change>&) {}).ok());
  }

  GroupCommitter::Accepted accept(OperationRecord op, std::vector<saga::StepPlan> plan) {
    std::promise<Result<GroupCommitter::Accepted>> done;
    REQUIRE(gc->accept_async(std::move(op), IdempotencyKey{}, OwnershipCheck{},
                             [&](Result<GroupCommitter::Accepted> r) { done.set_value(std::move(r)); },
                             std::move(plan)));
    auto r = done.get_future().get();
    REQUIRE(r.ok());
    sync();
    return r.value();
  }
  void event(Event e) {
    gc->submit_event(std::move(e));
    sync();
  }
  void gave_up(const std::string& id, int attempts) {
    gc->submit_step_gave_up(id, attempts);
    sync();
  }
  void cancel(const std::string& op_id) {
    std::promise<Status> done;
    gc->cancel_saga(op_id, [&](Status s) { done.set_value(std::move(s)); });
    REQUIRE(done.get_future().get().ok());
    sync();
  }
  void decide(CancelDecision d) {
    std::promise<Status> done;
    gc->apply_cancel(std::move(d), [&](Status s) { done.set_value(std::move(s)); });
    REQUIRE(done.get_future().get().ok());
    sync();
  }
  OperationRecord get(const std::string& id) {
    auto r = SqliteStoreReader::open(path);
    auto op = r.value()->get_operation(id);
    REQUIRE(op);
    return *op;
  }
};

std::vector<std::string> ids_of(const std::vector<Command>& cs) {
  std::vector<std::string> out;
  for (const Command& c : cs) out.push_back(c.id);
  return out;
}

}  // namespace

TEST_CASE("a saga's accept commits its first step and hands only that step's command over", "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  auto accepted = s.accept(op, order_plan());
  CHECK(accepted.change.op.step_count == 3);
  REQUIRE(accepted.change.op.steps.size() == 3);
  CHECK(accepted.change.op.steps[0].status.state == saga::StepState::pending);

  auto commands = s.take_commands();
  REQUIRE(commands.size() == 1);
  const Command& c = commands[0];
  CHECK(c.id == op.id + ".reserve");
  CHECK(c.name == "reserve_stock");
  CHECK(c.service == "inventory");
  CHECK(c.saga.operation == op.id);
  CHECK(c.saga.step == "reserve");
  CHECK(c.payload == op.payload);  // the operation's, for every step
  CHECK(c.params == op.params);

  auto changes = s.take_changes();
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].kind == HistoryKind::accepted);
  CHECK(changes[1].kind == HistoryKind::step_dispatched);
  CHECK(changes[1].request_id == op.id + ".reserve");
  CHECK(s.gc->counters().accepted.load() == 1);
  CHECK(s.gc->counters().unfinished.load() == 1);
}

TEST_CASE("a rejected step dispatches the compensations in reverse, and the saga ends once, rejected",
          "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  s.accept(op, order_plan());
  s.take_commands();
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"reservation", "r1"}}));
  auto next = s.take_commands();
  REQUIRE(ids_of(next) == std::vector<std::string>{op.id + ".charge"});
  CHECK(next[0].steps == json{{"reserve", {{"data", {{"reservation", "r1"}}}}}});
  CHECK(next[0].lease == std::chrono::milliseconds(10000));  // the step's own timeout
  CHECK(next[0].max_attempts == 3);

  s.event(step_event(op.id + ".charge", OpState::rejected, "card_declined"));
  auto undo = s.take_commands();
  REQUIRE(ids_of(undo) == std::vector<std::string>{op.id + ".reserve.undo"});
  CHECK(undo[0].name == "release_stock");
  CHECK_FALSE(undo[0].cancel);

  s.event(step_event(op.id + ".reserve.undo", OpState::completed, "success"));
  CHECK(s.take_commands().empty());
  OperationRecord done = s.get(op.id);
  CHECK(done.state == OpState::rejected);
  CHECK(done.code == "card_declined");
  CHECK(s.gc->counters().unfinished.load() == 0);  // ended once, though many entries carry its state
  int ended = 0;
  for (const Change& c : s.take_changes()) ended += ends_operation(c) ? 1 : 0;
  CHECK(ended == 1);
}

TEST_CASE("a saga's cancel hands the step in flight to the dispatcher, and a step taken back unwinds it",
          "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  s.accept(op, order_plan());
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"reservation", "r1"}}));
  s.take_commands();

  s.cancel(op.id);
  CHECK(s.take_cancels() == std::vector<std::string>{op.id + ".charge"});
  CHECK(s.get(op.id).cancel_requested);
  CHECK(s.take_commands().empty());  // charge is in flight: nothing to unwind yet

  // The dispatcher took charge back before any worker saw it.
  s.decide({CancelDecision::Kind::taken_back, op.id + ".charge", "charge_card"});
  auto undo = s.take_commands();
  REQUIRE(ids_of(undo) == std::vector<std::string>{op.id + ".reserve.undo"});
  s.event(step_event(op.id + ".reserve.undo", OpState::completed, "success"));
  OperationRecord done = s.get(op.id);
  CHECK(done.state == OpState::canceled);
  REQUIRE(done.steps.size() == 3);
  CHECK(done.steps[1].status.state == saga::StepState::canceled);
  CHECK(done.steps[2].status.state == saga::StepState::skipped);
  CHECK(done.steps[0].status.compensation.state == saga::CompState::completed);

  // Telling the workers about a step writes nothing.
  s.decide({CancelDecision::Kind::notify_workers, op.id + ".create", ""});
  CHECK(s.take_commands().empty());
}

TEST_CASE("a step's give-up settles it with an unlimited settle, and a compensation's fails the saga",
          "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  s.accept(op, order_plan());
  s.take_commands();
  s.gave_up(op.id + ".reserve", 5);
  auto settle = s.take_commands();
  REQUIRE(ids_of(settle) == std::vector<std::string>{op.id + ".reserve"});
  CHECK(settle[0].cancel);
  CHECK(settle[0].attempt == 6);
  CHECK(settle[0].max_attempts == k_unlimited_attempts);
  CHECK(s.get(op.id).steps[0].status.state == saga::StepState::settling);

  // The service says it ran: the saga goes on.
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"reservation", "r1"}}));
  s.event(step_event(op.id + ".charge", OpState::failed, "gateway_down"));
  REQUIRE(ids_of(s.take_commands()) == std::vector<std::string>{op.id + ".charge", op.id + ".reserve.undo"});
  s.gave_up(op.id + ".reserve.undo", 5);
  OperationRecord done = s.get(op.id);
  CHECK(done.state == OpState::failed);
  CHECK(done.code == "compensation_failed");
  CHECK(s.gc->counters().unfinished.load() == 0);
}

TEST_CASE("a step whose command would be over the limit is never sent: it fails and the saga unwinds",
          "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  s.accept(op, order_plan());
  s.take_commands();
  // A first step's data that makes every later command too large (events
  // from the wire are at most 1 MiB each; 16 steps of them can add up).
  std::string big(k_max_command_bytes + 1, 'x');
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"blob", big}}));
  // Neither charge (it carries reserve's data) nor reserve's compensation
  // (it carries its own step's data) can be sent.
  CHECK(s.take_commands().empty());
  OperationRecord done = s.get(op.id);
  CHECK(done.state == OpState::failed);
  CHECK(done.code == "compensation_failed");
  REQUIRE(done.steps.size() == 3);
  CHECK(done.steps[1].status.state == saga::StepState::failed);
  CHECK(done.steps[1].status.code == "command_too_large");
  CHECK(done.steps[0].status.compensation.state == saga::CompState::failed);
  CHECK(done.steps[0].status.compensation.code == "command_too_large");
}

TEST_CASE("a final outcome for a step that already ended ends its delivery's lease, and only that",
          "[group_commit][saga]") {
  SagaCommitter s;
  OperationRecord op = order_op();
  s.accept(op, order_plan());
  s.event(step_event(op.id + ".reserve", OpState::processing));
  CHECK(s.take_ended().empty());
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"reservation", "r1"}}));
  CHECK(s.take_ended().empty());  // applied: its change ends the lease
  // A settle (or a resend after a restart) that raced the outcome: the
  // worker re-publishes it, the saga has no use for it, the lease must end.
  s.event(step_event(op.id + ".reserve", OpState::completed, "success", {{"reservation", "r1"}}));
  CHECK(s.take_ended() == std::vector<std::string>{op.id + ".reserve"});
  // A repeated processing is no final outcome.
  s.event(step_event(op.id + ".reserve", OpState::processing));
  CHECK(s.take_ended().empty());
}
