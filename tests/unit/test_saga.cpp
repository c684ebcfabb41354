#include <catch2/catch.hpp>

#include "store/saga.h"

using namespace asyncops;
using namespace asyncops::saga;
using nlohmann::json;

namespace {

const std::string k_op = "01936f4e-2a7b-7c3d-9e4f-5a6b7c8d9e0f";

// The order: reserve the stock, charge the card, create the order.
std::vector<StepPlan> order_plan() {
  return {{"reserve", "inventory", "reserve_stock", "release_stock", 0, 0},
          {"charge", "payments", "charge_card", "refund_card", 0, 0},
          {"create", "orders", "create_order", "", 0, 0}};
}

SagaInput event(const std::string& request_id, OpState state, const std::string& code = "", json data = nullptr,
                int attempt = 1) {
  SagaInput in;
  in.kind = SagaInput::Kind::step_event;
  in.request_id = request_id;
  in.state = state;
  in.code = code;
  in.data = std::move(data);
  in.attempt = attempt;
  in.now = 1000;
  return in;
}

SagaInput gave_up(const std::string& request_id, int attempts) {
  SagaInput in;
  in.kind = SagaInput::Kind::gave_up;
  in.request_id = request_id;
  in.attempt = attempts;
  in.now = 2000;
  return in;
}

SagaInput cancel() {
  SagaInput in;
  in.kind = SagaInput::Kind::cancel;
  in.now = 1500;
  return in;
}

std::string step_id(const std::string& name) { return step_request_id(k_op, name); }
std::string undo_id(const std::string& name) { return compensation_request_id(k_op, name); }

// A saga and the decisions taken so far, as the store would keep it.
struct Saga {
  SagaState state = new_saga(k_op, order_plan());
  SagaDecision last;
  std::vector<std::string> sent;  // request ids dispatched, in order ("settle:" prefix for settles)

  SagaDecision& apply(const SagaInput& in) {
    last = next(state, in);
    if (last.changed) state = last.state;
    record(last);
    return last;
  }
  void record(const SagaDecision& d) {
    for (const Dispatch& x : d.dispatch) sent.push_back((x.what == Dispatch::What::settle ? "settle:" : "") + x.request_id);
  }
  SagaDecision& start() {
    SagaInput in;
    in.kind = SagaInput::Kind::start;
    in.now = 500;
    return apply(in);
  }
  // The step runs on a worker and completes.
  void complete(const std::string& name, json data = json::object()) {
    apply(event(step_id(name), OpState::processing));
    apply(event(step_id(name), OpState::completed, "success", std::move(data)));
  }
  void compensate(const std::string& name) {
    apply(event(undo_id(name), OpState::processing));
    apply(event(undo_id(name), OpState::completed, "success"));
  }
  const StepStatus& step(const std::string& name) const {
    for (size_t i = 0; i < state.plan.size(); ++i) {
      if (state.plan[i].name == name) return state.steps[i];
    }
    FAIL("no step " << name);
    return state.steps[0];
  }
};

std::vector<std::string> kinds(const SagaDecision& d) {
  std::vector<std::string> out;
  for (const HistoryNote& h : d.history) out.push_back(h.step.empty() ? h.kind : h.kind + ":" + h.step);
  return out;
}

}  // namespace

TEST_CASE("step request ids are {op}.{step} and {op}.{step}.undo, and parse back", "[saga]") {
  CHECK(step_request_id(k_op, "reserve") == k_op + ".reserve");
  CHECK(compensation_request_id(k_op, "reserve") == k_op + ".reserve.undo");
  auto ref = parse_step_request_id(k_op + ".reserve");
  REQUIRE(ref);
  CHECK(ref->op_id == k_op);
  CHECK(ref->step == "reserve");
  CHECK_FALSE(ref->compensation);
  ref = parse_step_request_id(k_op + ".reserve.undo");
  REQUIRE(ref);
  CHECK(ref->step == "reserve");
  CHECK(ref->compensation);
  // The longest name still fits the protocol's 64-byte request id.
  std::string longest(k_max_step_name, 'n');
  CHECK(compensation_request_id(k_op, longest).size() <= 64);
  CHECK(parse_step_request_id(compensation_request_id(k_op, longest)));
  CHECK_FALSE(parse_step_request_id(k_op));                            // a plain operation
  CHECK_FALSE(parse_step_request_id(k_op + "."));
  CHECK_FALSE(parse_step_request_id(k_op + ".undo.x"));                // '.' is not a name character
  CHECK_FALSE(parse_step_request_id(k_op + "." + longest + "x"));
  CHECK_FALSE(parse_step_request_id("not-a-uuid-at-all-not-a-uuid-at-all.reserve"));
  CHECK_FALSE(parse_step_request_id(""));
}

TEST_CASE("step and compensation states round-trip through their names", "[saga]") {
  for (StepState s : {StepState::waiting, StepState::pending, StepState::processing, StepState::settling,
                      StepState::completed, StepState::rejected, StepState::failed, StepState::canceled,
                      StepState::skipped}) {
    CHECK(parse_step_state(to_string(s)) == s);
  }
  for (CompState s : {CompState::none, CompState::waiting, CompState::pending, CompState::processing,
                      CompState::completed, CompState::failed, CompState::abandoned}) {
    CHECK(parse_comp_state(to_string(s)) == s);
  }
  CHECK_FALSE(parse_step_state("done"));
  CHECK_FALSE(parse_comp_state(""));
}

TEST_CASE("the happy path runs each step in order, passes nothing twice and completes", "[saga]") {
  Saga s;
  auto& d = s.start();
  CHECK(d.changed);
  REQUIRE(d.dispatch.size() == 1);
  CHECK(d.dispatch[0].request_id == step_id("reserve"));
  CHECK(d.dispatch[0].attempt == 1);
  CHECK(s.state.op_state == OpState::pending);
  CHECK(s.step("reserve").state == StepState::pending);

  s.apply(event(step_id("reserve"), OpState::processing));
  CHECK(s.state.op_state == OpState::processing);
  CHECK(kinds(s.last) == std::vector<std::string>{"step_processing:reserve", "processing"});

  s.apply(event(step_id("reserve"), OpState::completed, "success", {{"reservation", "r1"}}));
  CHECK(kinds(s.last) == std::vector<std::string>{"step_completed:reserve", "step_dispatched:charge"});
  CHECK(s.step("reserve").data == json{{"reservation", "r1"}});
  s.complete("charge", {{"charge", "c1"}});
  s.complete("create", {{"id", "o1"}, {"total", 42}});
  CHECK(s.state.op_state == OpState::completed);
  CHECK(s.state.code == "success");
  CHECK(s.last.history.back().kind == "completed");
  CHECK(s.sent == std::vector<std::string>{step_id("reserve"), step_id("charge"), step_id("create")});
  for (const StepStatus& st : s.state.steps) CHECK(st.compensation.state == CompState::none);
  // The last step's data is the resource's representation.
  CHECK(s.step("create").data == json{{"id", "o1"}, {"total", 42}});
}

TEST_CASE("a rejection at each step runs exactly the compensations of the completed steps, in reverse", "[saga]") {
  auto rejected_at = GENERATE(0, 1, 2);
  const std::vector<std::string> names = {"reserve", "charge", "create"};
  Saga s;
  s.start();
  for (int i = 0; i < rejected_at; ++i) s.complete(names[i]);
  s.sent.clear();
  s.apply(event(step_id(names[rejected_at]), OpState::processing));
  s.apply(event(step_id(names[rejected_at]), OpState::rejected, "card_declined"));
  // Later steps never run.
  for (size_t i = rejected_at + 1; i < names.size(); ++i) CHECK(s.step(names[i]).state == StepState::skipped);
  std::vector<std::string> expected;
  for (int i = rejected_at - 1; i >= 0; --i) expected.push_back(undo_id(names[i]));
  // One compensation at a time: the next is sent only when the previous completed.
  for (int i = rejected_at - 1; i >= 0; --i) {
    CHECK(s.state.op_state == OpState::processing);
    CHECK(s.step(names[i]).compensation.state == CompState::pending);
    s.compensate(names[i]);
  }
  CHECK(s.sent == expected);
  CHECK(s.state.op_state == OpState::rejected);
  CHECK(s.state.code == "card_declined");
  CHECK(s.state.message == "step " + names[rejected_at]);
  CHECK(s.step(names[rejected_at]).compensation.state == CompState::none);  // it never completed
  for (int i = 0; i < rejected_at; ++i) CHECK(s.step(names[i]).compensation.state == CompState::completed);
}

TEST_CASE("a step the worker failed ends the saga failed with its code, after compensating", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.apply(event(step_id("charge"), OpState::failed, "handler_error"));
  CHECK(s.last.dispatch.size() == 1);
  CHECK(s.last.dispatch[0].request_id == undo_id("reserve"));
  s.compensate("reserve");
  CHECK(s.state.op_state == OpState::failed);
  CHECK(s.state.code == "handler_error");
}

TEST_CASE("a step without a compensation is passed over when unwinding", "[saga]") {
  Saga s;
  s.state = new_saga(k_op, {{"check", "inventory", "check_stock", "", 0, 0},
                            {"reserve", "inventory", "reserve_stock", "release_stock", 0, 0},
                            {"charge", "payments", "charge_card", "", 0, 0}});
  s.start();
  s.complete("check");
  s.complete("reserve");
  s.sent.clear();
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  s.compensate("reserve");
  CHECK(s.sent == std::vector<std::string>{undo_id("reserve")});
  CHECK(s.state.op_state == OpState::rejected);
  CHECK(s.step("check").compensation.state == CompState::none);
}

TEST_CASE("a cancel between steps takes the next step back and compensates what completed", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");  // charge is now queued in the dispatcher, not yet sent
  auto& d = s.apply(cancel());
  CHECK(d.changed);
  CHECK(s.state.cancel_requested);
  CHECK(d.cancel == std::vector<std::string>{step_id("charge")});
  CHECK(d.dispatch.empty());  // nothing more until charge's outcome is known
  // The dispatcher took it back before any worker saw it: the daemon's canceled event.
  s.apply(event(step_id("charge"), OpState::canceled, "canceled"));
  CHECK(s.step("charge").state == StepState::canceled);
  CHECK(s.step("create").state == StepState::skipped);
  REQUIRE(s.last.dispatch.size() == 1);
  CHECK(s.last.dispatch[0].request_id == undo_id("reserve"));
  s.compensate("reserve");
  CHECK(s.state.op_state == OpState::canceled);
  CHECK(s.state.code == "canceled");
  CHECK(s.step("charge").compensation.state == CompState::none);
}

TEST_CASE("a cancel while a step runs: if the worker did it, it is compensated too", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.apply(event(step_id("charge"), OpState::processing));
  s.apply(cancel());
  CHECK(s.last.cancel == std::vector<std::string>{step_id("charge")});
  s.sent.clear();
  // Too late for the worker to skip it: charge completed; create must not run.
  s.apply(event(step_id("charge"), OpState::completed, "success", {{"charge", "c1"}}));
  CHECK(s.step("create").state == StepState::skipped);
  s.compensate("charge");
  s.compensate("reserve");
  CHECK(s.sent == std::vector<std::string>{undo_id("charge"), undo_id("reserve")});
  CHECK(s.state.op_state == OpState::canceled);
}

TEST_CASE("a cancel while a step waits at a worker that then records canceled", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.complete("charge");
  s.apply(cancel());
  CHECK(s.last.cancel == std::vector<std::string>{step_id("create")});
  s.apply(event(step_id("create"), OpState::canceled, "canceled"));
  s.compensate("charge");
  s.compensate("reserve");
  CHECK(s.state.op_state == OpState::canceled);
  CHECK(s.sent.back() == undo_id("reserve"));
}

TEST_CASE("a cancel that comes too late for the last step leaves the saga completed", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.complete("charge");
  s.apply(cancel());
  s.apply(event(step_id("create"), OpState::completed, "success", {{"id", "o1"}}));
  CHECK(s.state.op_state == OpState::completed);
  CHECK(s.step("charge").compensation.state == CompState::none);
}

TEST_CASE("a cancel with nothing in flight unwinds at once: a second cancel changes nothing", "[saga]") {
  // A state the store could hold after a restart between two writes.
  Saga s;
  s.state.op_state = OpState::processing;
  s.state.steps[0].state = StepState::completed;
  auto& d = s.apply(cancel());
  CHECK(d.cancel.empty());
  REQUIRE(d.dispatch.size() == 1);
  CHECK(d.dispatch[0].request_id == undo_id("reserve"));
  CHECK_FALSE(next(s.state, cancel()).changed);
}

TEST_CASE("a cancel during compensation is recorded and changes nothing else", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  auto& d = s.apply(cancel());
  CHECK(d.changed);
  CHECK(d.cancel.empty());  // compensations are never canceled
  CHECK(d.dispatch.empty());
  s.compensate("reserve");
  CHECK(s.state.op_state == OpState::rejected);  // the step's outcome is the cause
  CHECK(s.state.code == "card_declined");
}

TEST_CASE("a compensation that fails after its attempts ends the saga compensation_failed, naming the step",
          "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.complete("charge");
  s.apply(event(step_id("create"), OpState::rejected, "out_of_stock"));
  REQUIRE(s.last.dispatch.size() == 1);
  CHECK(s.last.dispatch[0].request_id == undo_id("charge"));
  s.sent.clear();
  s.apply(gave_up(undo_id("charge"), 5));
  CHECK(s.state.op_state == OpState::failed);
  CHECK(s.state.code == "compensation_failed");
  CHECK(s.state.message.find("charge") != std::string::npos);
  CHECK(s.step("charge").compensation.state == CompState::failed);
  CHECK(s.step("charge").compensation.code == "worker_timeout");
  CHECK(s.step("charge").compensation.attempt == 5);
  // The compensations before it in reverse order are not run.
  CHECK(s.step("reserve").compensation.state == CompState::abandoned);
  CHECK(s.sent.empty());
}

TEST_CASE("a compensation the service refuses ends the saga compensation_failed at once", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  s.apply(event(undo_id("reserve"), OpState::rejected, "no_such_reservation"));
  CHECK(s.state.op_state == OpState::failed);
  CHECK(s.state.code == "compensation_failed");
  CHECK(s.state.message.find("reserve") != std::string::npos);
  CHECK(s.step("reserve").compensation.code == "no_such_reservation");
}

TEST_CASE("a step whose attempts run out is settled before anything is compensated", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve");
  s.sent.clear();
  s.apply(gave_up(step_id("charge"), 5));
  CHECK(s.step("charge").state == StepState::settling);
  CHECK(s.state.op_state == OpState::processing);
  REQUIRE(s.last.dispatch.size() == 1);
  CHECK(s.last.dispatch[0].what == Dispatch::What::settle);  // sent with cancel: true
  CHECK(s.last.dispatch[0].attempt == 6);
  CHECK(s.last.dispatch[0].request_id == step_id("charge"));  // the same id: the worker's dedupe answers

  SECTION("no worker answers the settle: it is sent again, with no limit") {
    s.apply(gave_up(step_id("charge"), 6));
    CHECK(s.step("charge").state == StepState::settling);
    REQUIRE(s.last.dispatch.size() == 1);
    CHECK(s.last.dispatch[0].attempt == 7);
    CHECK(s.state.op_state == OpState::processing);
  }
  SECTION("the service recorded canceled: it never ran, so only reserve is undone") {
    s.apply(event(step_id("charge"), OpState::processing, "", nullptr, 6));
    CHECK_FALSE(s.last.changed);
    s.apply(event(step_id("charge"), OpState::canceled, "canceled", nullptr, 6));
    CHECK(s.step("charge").state == StepState::failed);
    CHECK(s.step("charge").code == "worker_timeout");
    s.compensate("reserve");
    CHECK(s.sent == std::vector<std::string>{"settle:" + step_id("charge"), undo_id("reserve")});
    CHECK(s.state.op_state == OpState::failed);
    CHECK(s.state.code == "worker_timeout");
  }
  SECTION("a worker had done it after all: the saga goes on") {
    s.apply(event(step_id("charge"), OpState::completed, "success", {{"charge", "c1"}}, 6));
    CHECK(s.step("charge").state == StepState::completed);
    CHECK(s.sent.back() == step_id("create"));
    s.complete("create");
    CHECK(s.state.op_state == OpState::completed);
  }
  SECTION("the fence was recorded first (failed/worker_timeout): it never ran") {
    s.apply(event(step_id("charge"), OpState::failed, "worker_timeout", nullptr, 5));
    CHECK(s.step("charge").state == StepState::failed);
    CHECK(s.sent.back() == undo_id("reserve"));
  }
}

TEST_CASE("duplicate and late events change nothing", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve", {{"reservation", "r1"}});
  SagaState before = s.state;

  // The reserve outcome again (a redelivery re-published it), and its processing.
  CHECK_FALSE(next(s.state, event(step_id("reserve"), OpState::completed, "success", {{"reservation", "OTHER"}})).changed);
  CHECK_FALSE(next(s.state, event(step_id("reserve"), OpState::processing)).changed);
  // An outcome for a step that was never sent.
  CHECK_FALSE(next(s.state, event(step_id("create"), OpState::completed)).changed);
  // A compensation nobody asked for.
  CHECK_FALSE(next(s.state, event(undo_id("reserve"), OpState::completed)).changed);
  // Another operation's step, an unknown step, a plain id, nonsense.
  CHECK_FALSE(next(s.state, event("01936f4e-2a7b-7c3d-9e4f-000000000000.charge", OpState::completed)).changed);
  CHECK_FALSE(next(s.state, event(step_id("ship"), OpState::completed)).changed);
  CHECK_FALSE(next(s.state, event(k_op, OpState::completed)).changed);
  CHECK_FALSE(next(s.state, event("", OpState::completed)).changed);
  CHECK_FALSE(next(s.state, gave_up(step_id("reserve"), 5)).changed);
  // A second start.
  SagaInput again;
  again.kind = SagaInput::Kind::start;
  CHECK_FALSE(next(s.state, again).changed);

  s.apply(event(step_id("charge"), OpState::processing));
  CHECK_FALSE(next(s.state, event(step_id("charge"), OpState::processing, "", nullptr, 2)).changed);
  CHECK(s.step("reserve").data == json{{"reservation", "r1"}});

  // After the end, nothing changes it.
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  s.compensate("reserve");
  REQUIRE(s.state.op_state == OpState::rejected);
  CHECK_FALSE(next(s.state, event(undo_id("reserve"), OpState::completed)).changed);
  CHECK_FALSE(next(s.state, event(step_id("charge"), OpState::completed)).changed);
  CHECK_FALSE(next(s.state, cancel()).changed);
  CHECK_FALSE(resume(s.state, 5, 3000).changed);
  CHECK(resume(s.state, 5, 3000).dispatch.empty());
}

TEST_CASE("after a restart the stored state alone says what to send again", "[saga]") {
  SECTION("a step in flight is sent again with its stored attempt + 1") {
    Saga s;
    s.start();
    s.complete("reserve");
    s.state.steps[1].attempt = 2;  // the dispatch marks the store recorded
    auto d = resume(s.state, 5, 3000);
    REQUIRE(d.dispatch.size() == 1);
    CHECK(d.dispatch[0].request_id == step_id("charge"));
    CHECK(d.dispatch[0].what == Dispatch::What::step);
    CHECK(d.dispatch[0].attempt == 3);
    CHECK_FALSE(d.changed);  // nothing to write
  }
  SECTION("a step with no dispatch record is sent as attempt 2, never as a first attempt") {
    // The last daemon may have sent it and died before recording that:
    // attempt 1 would let a cancel take it back as never seen.
    Saga s;
    s.start();
    REQUIRE(s.state.steps[0].attempt == 0);
    auto d = resume(s.state, 5, 3000);
    REQUIRE(d.dispatch.size() == 1);
    CHECK(d.dispatch[0].attempt == 2);
  }
  SECTION("a step whose attempts are used up is settled") {
    Saga s;
    s.start();
    s.state.steps[0].attempt = 5;
    auto d = resume(s.state, 5, 3000);
    CHECK(d.changed);
    CHECK(d.state.steps[0].state == StepState::settling);
    REQUIRE(d.dispatch.size() == 1);
    CHECK(d.dispatch[0].what == Dispatch::What::settle);
    CHECK(d.dispatch[0].attempt == 6);
  }
  SECTION("a step's own max_attempts counts, not the daemon's") {
    Saga s;
    s.state.plan[0].max_attempts = 2;
    s.start();
    s.state.steps[0].attempt = 2;
    CHECK(resume(s.state, 5, 3000).state.steps[0].state == StepState::settling);
  }
  SECTION("a settling step is settled again") {
    Saga s;
    s.start();
    s.apply(gave_up(step_id("reserve"), 5));
    auto d = resume(s.state, 5, 3000);
    REQUIRE(d.dispatch.size() == 1);
    CHECK(d.dispatch[0].what == Dispatch::What::settle);
  }
  SECTION("a compensation in flight is sent again; one out of attempts fails the saga") {
    Saga s;
    s.start();
    s.complete("reserve");
    s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
    s.state.steps[0].compensation.attempt = 1;
    auto d = resume(s.state, 5, 3000);
    REQUIRE(d.dispatch.size() == 1);
    CHECK(d.dispatch[0].request_id == undo_id("reserve"));
    CHECK(d.dispatch[0].attempt == 2);
    s.state.steps[0].compensation.attempt = 5;
    d = resume(s.state, 5, 3000);
    CHECK(d.state.op_state == OpState::failed);
    CHECK(d.state.code == "compensation_failed");
    CHECK(d.dispatch.empty());
  }
  SECTION("resuming at every point of a saga and going on reaches the same end") {
    // Replay the happy path, restarting after every input: the restarted
    // daemon re-sends exactly what was in flight, and never a completed step.
    Saga s;
    s.start();
    std::vector<SagaInput> inputs = {
        event(step_id("reserve"), OpState::processing), event(step_id("reserve"), OpState::completed, "success"),
        event(step_id("charge"), OpState::processing),  event(step_id("charge"), OpState::rejected, "card_declined"),
        event(undo_id("reserve"), OpState::processing), event(undo_id("reserve"), OpState::completed, "success")};
    for (const SagaInput& in : inputs) {
      s.apply(in);
      auto d = resume(s.state, 5, 3000);
      for (const Dispatch& x : d.dispatch) {
        const StepStatus& st = s.state.steps[x.step];
        if (x.what == Dispatch::What::compensation) {
          CHECK(st.state == StepState::completed);
          CHECK((st.compensation.state == CompState::pending || st.compensation.state == CompState::processing));
        } else {
          CHECK((st.state == StepState::pending || st.state == StepState::processing));
        }
      }
    }
    CHECK(s.state.op_state == OpState::rejected);
  }
}

TEST_CASE("a cancel before the first step reached a worker ends the saga canceled with nothing to undo", "[saga]") {
  Saga s;
  s.start();
  s.apply(cancel());
  CHECK(s.last.cancel == std::vector<std::string>{step_id("reserve")});
  CHECK(s.state.op_state == OpState::pending);
  s.apply(event(step_id("reserve"), OpState::canceled, "canceled", nullptr, 0));  // taken back
  CHECK(s.state.op_state == OpState::canceled);
  CHECK(s.sent == std::vector<std::string>{step_id("reserve")});
  CHECK(s.step("charge").state == StepState::skipped);
  CHECK(s.step("create").state == StepState::skipped);
}

TEST_CASE("each change of a rejected saga is one history note, in order", "[saga]") {
  Saga s;
  CHECK(kinds(s.start()) == std::vector<std::string>{"step_dispatched:reserve"});
  s.complete("reserve");
  s.apply(event(step_id("charge"), OpState::processing));
  CHECK(kinds(s.last) == std::vector<std::string>{"step_processing:charge"});
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  CHECK(kinds(s.last) ==
        std::vector<std::string>{"step_rejected:charge", "step_skipped:create", "compensation_dispatched:reserve"});
  CHECK(s.last.history[0].code == "card_declined");
  s.apply(event(undo_id("reserve"), OpState::processing));
  CHECK(kinds(s.last) == std::vector<std::string>{"compensation_processing:reserve"});
  s.apply(event(undo_id("reserve"), OpState::completed, "success"));
  CHECK(kinds(s.last) == std::vector<std::string>{"compensation_completed:reserve", "rejected"});
  CHECK(s.last.history.back().code == "card_declined");
  CHECK(s.last.history.back().message == "step charge");
}

TEST_CASE("times: a step starts when dispatched and ends with its outcome", "[saga]") {
  Saga s;
  s.start();
  CHECK(s.step("reserve").started_at == 500);
  CHECK(s.step("reserve").ended_at == 0);
  s.complete("reserve");
  CHECK(s.step("reserve").ended_at == 1000);
  CHECK(s.step("charge").started_at == 1000);
  s.apply(gave_up(step_id("charge"), 5));
  s.apply(event(step_id("charge"), OpState::canceled, "canceled", nullptr, 6));
  CHECK(s.step("reserve").compensation.started_at == 1000);
  CHECK(s.step("charge").attempt == 6);
}

TEST_CASE("the document's steps show each step and its compensation, without data", "[saga]") {
  Saga s;
  s.start();
  s.complete("reserve", {{"reservation", "r1"}});
  s.apply(event(step_id("charge"), OpState::rejected, "card_declined"));
  json steps = steps_json(s.state);
  REQUIRE(steps.size() == 3);
  CHECK(steps[0]["name"] == "reserve");
  CHECK(steps[0]["service"] == "inventory");
  CHECK(steps[0]["command"] == "reserve_stock");
  CHECK(steps[0]["state"] == "completed");
  CHECK(steps[0]["code"] == "success");
  CHECK(steps[0]["message"].is_null());
  CHECK(steps[0]["attempt"] == 1);
  CHECK(steps[0]["started_at"] == "1970-01-01T00:00:00.500Z");
  CHECK(steps[0]["ended_at"] == "1970-01-01T00:00:01.000Z");
  CHECK_FALSE(steps[0].contains("data"));
  CHECK(steps[0]["compensation"]["command"] == "release_stock");
  CHECK(steps[0]["compensation"]["state"] == "pending");
  CHECK(steps[1]["state"] == "rejected");
  CHECK(steps[1]["code"] == "card_declined");
  CHECK(steps[1]["compensation"]["state"] == "none");
  CHECK(steps[2]["state"] == "skipped");
  CHECK(steps[2]["started_at"].is_null());
  CHECK(steps[2]["compensation"].is_null());  // the last step declares none
}

TEST_CASE("a command carries the data of the steps completed before it: a compensation its own too", "[saga]") {
  Saga s;
  s.start();
  CHECK(command_steps_data(s.state, s.last.dispatch.at(0)) == json::object());
  s.complete("reserve", {{"reservation", "r1"}});
  const Dispatch charge = s.last.dispatch.at(0);
  CHECK(command_steps_data(s.state, charge) == json{{"reserve", {{"data", {{"reservation", "r1"}}}}}});
  s.complete("charge", {{"charge", "c1"}});
  s.apply(event(step_id("create"), OpState::rejected, "out_of_stock"));
  const Dispatch refund = s.last.dispatch.at(0);
  REQUIRE(refund.what == Dispatch::What::compensation);
  CHECK(command_steps_data(s.state, refund) ==
        json{{"reserve", {{"data", {{"reservation", "r1"}}}}}, {"charge", {{"data", {{"charge", "c1"}}}}}});
}
