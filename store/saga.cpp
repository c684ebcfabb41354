#include "store/saga.h"

#include <algorithm>

#include "shared/clock.h"

namespace asyncops::saga {
namespace {

constexpr const char* k_undo_suffix = ".undo";
constexpr size_t k_uuid_length = 36;

// A table of these gives a state enum's names, as stored and on the wire.
template <class State>
struct StateName {
  State state;
  const char* name;
};
template <class State, size_t N>
const char* name_in(const StateName<State> (&names)[N], State s, const char* otherwise) {
  for (const auto& n : names) {
    if (n.state == s) return n.name;
  }
  return otherwise;
}
template <class State, size_t N>
std::optional<State> state_in(const StateName<State> (&names)[N], const std::string& s) {
  for (const auto& n : names) {
    if (s == n.name) return n.state;
  }
  return std::nullopt;
}

constexpr StateName<StepState> k_step_state_names[] = {
    {StepState::waiting, "waiting"},     {StepState::pending, "pending"},     {StepState::processing, "processing"},
    {StepState::settling, "settling"},   {StepState::completed, "completed"}, {StepState::rejected, "rejected"},
    {StepState::failed, "failed"},       {StepState::canceled, "canceled"},   {StepState::skipped, "skipped"},
};
constexpr StateName<CompState> k_comp_state_names[] = {
    {CompState::none, "none"},           {CompState::waiting, "waiting"},     {CompState::pending, "pending"},
    {CompState::processing, "processing"}, {CompState::completed, "completed"}, {CompState::failed, "failed"},
    {CompState::abandoned, "abandoned"},
};

bool step_in_flight(StepState s) {
  return s == StepState::pending || s == StepState::processing || s == StepState::settling;
}
bool comp_in_flight(CompState s) { return s == CompState::pending || s == CompState::processing; }
// A step outcome that stops the saga going forward.
bool step_failing(StepState s) {
  return s == StepState::rejected || s == StepState::failed || s == StepState::canceled;
}

bool step_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool looks_like_uuid(const std::string& s) {
  if (s.size() != k_uuid_length) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::string with_step(const std::string& what, const std::string& step, const std::string& message) {
  return what + " " + step + (message.empty() ? "" : ": " + message);
}

// One application of an input: the state being changed and the decision
// being built. Every change goes through here so that it is noted once.
class Machine {
 public:
  Machine(const SagaState& state, int64_t now) : m_now(now) { m_d.state = state; }

  SagaState& s() { return m_d.state; }
  SagaDecision take() { return std::move(m_d); }
  void set_changed() { m_d.changed = true; }

  void note(const char* kind, const std::string& step, const std::string& code = "", const std::string& message = "") {
    m_d.history.push_back(HistoryNote{kind, step, code, message});
    m_d.changed = true;
  }

  // The dispatcher decides about it after the commit (daemon/cancel.h).
  void cancel_command(std::string request_id) { m_d.cancel.push_back(std::move(request_id)); }

  int max_attempts(size_t i, int default_max) const {
    int m = m_d.state.plan[i].max_attempts;
    return m > 0 ? m : default_max;
  }

  void send_step(size_t i, Dispatch::What what, int attempt) {
    std::string id = what == Dispatch::What::compensation ? compensation_request_id(s().op_id, s().plan[i].name)
                                                          : step_request_id(s().op_id, s().plan[i].name);
    m_d.dispatch.push_back(Dispatch{i, what, attempt, std::move(id)});
  }

  // Starts step i (what: step) or its compensation (what: compensation),
  // whose status is x: pending as of now, noted, and sent as its next attempt.
  template <class Status>
  void start(size_t i, Dispatch::What what, Status& x) {
    x.state = decltype(x.state)::pending;  // StepState and CompState both have it
    x.started_at = m_now;
    note(what == Dispatch::What::step ? "step_dispatched" : "compensation_dispatched", s().plan[i].name);
    send_step(i, what, x.attempt + 1);
  }

  // The operation leaves pending once any step has news.
  void mark_processing() {
    if (s().op_state != OpState::pending) return;
    s().op_state = OpState::processing;
    note("processing", "");
  }

  void finish(OpState state, const std::string& code, const std::string& message) {
    s().op_state = state;
    s().code = code;
    s().message = message;
    note(to_string(state), "", code, message);
  }

  // A step whose attempts ran out without an outcome: ask its service.
  void start_settling(size_t i, int attempts_made) {
    StepStatus& st = s().steps[i];
    st.attempt = std::max(st.attempt, attempts_made);
    st.state = StepState::settling;
    note("step_settling", s().plan[i].name, "",
         "no outcome after " + std::to_string(st.attempt) + " attempts: asking the service whether it ran");
    send_step(i, Dispatch::What::settle, st.attempt + 1);
  }

  void fail_compensation(size_t i, const std::string& code, const std::string& message) {
    CompStatus& c = s().steps[i].compensation;
    c.state = CompState::failed;
    c.code = code.empty() ? "error" : code;
    c.message = message;
    c.ended_at = m_now;
    note("compensation_failed", s().plan[i].name, c.code, message);
  }

  // Decides what follows when nothing is in flight: the next step, the next
  // compensation, or the end. Does nothing while a step or compensation runs.
  void advance() {
    SagaState& st = s();
    if (is_terminal(st.op_state)) return;
    for (const StepStatus& step : st.steps) {
      if (step_in_flight(step.state) || comp_in_flight(step.compensation.state)) return;
    }
    bool all_completed = std::all_of(st.steps.begin(), st.steps.end(),
                                     [](const StepStatus& x) { return x.state == StepState::completed; });
    bool any_failing = std::any_of(st.steps.begin(), st.steps.end(),
                                   [](const StepStatus& x) { return step_failing(x.state); });
    if (all_completed) {
      const StepStatus& last = st.steps.back();
      return finish(OpState::completed, last.code.empty() ? "success" : last.code, last.message);
    }
    if (!any_failing && !st.cancel_requested) {
      for (size_t i = 0; i < st.steps.size(); ++i) {
        if (st.steps[i].state == StepState::waiting) return start(i, Dispatch::What::step, st.steps[i]);
      }
      return;  // cannot happen: not all completed, none failing, none waiting, none in flight
    }
    unwind();
  }

 private:
  void unwind() {
    SagaState& st = s();
    for (size_t i = 0; i < st.steps.size(); ++i) {
      StepStatus& step = st.steps[i];
      if (step.state == StepState::waiting) {
        step.state = StepState::skipped;
        note("step_skipped", st.plan[i].name);
      }
      // Only a step whose completion a worker recorded is ever undone.
      if (step.state == StepState::completed && !st.plan[i].compensate.empty() &&
          step.compensation.state == CompState::none) {
        step.compensation.state = CompState::waiting;
        set_changed();
      }
    }
    // A compensation that failed stops the unwinding: the ones before it
    // may depend on it (they run in reverse order for that reason).
    for (size_t i = st.steps.size(); i-- > 0;) {
      if (st.steps[i].compensation.state != CompState::failed) continue;
      for (size_t j = 0; j < st.steps.size(); ++j) {
        CompStatus& c = st.steps[j].compensation;
        if (c.state != CompState::waiting) continue;
        c.state = CompState::abandoned;
        note("compensation_abandoned", st.plan[j].name, "", "not run: the compensation of step " + st.plan[i].name + " failed");
      }
      const CompStatus& failed = st.steps[i].compensation;
      return finish(OpState::failed, "compensation_failed",
                    with_step("the compensation of step", st.plan[i].name, failed.code + (failed.message.empty() ? "" : " (" + failed.message + ")")));
    }
    for (size_t i = st.steps.size(); i-- > 0;) {
      CompStatus& c = st.steps[i].compensation;
      if (c.state == CompState::waiting) return start(i, Dispatch::What::compensation, c);
    }
    // Everything that completed is undone: end with the cause.
    for (size_t i = 0; i < st.steps.size(); ++i) {
      const StepStatus& step = st.steps[i];
      if (step.state == StepState::rejected || step.state == StepState::failed) {
        return finish(step.state == StepState::rejected ? OpState::rejected : OpState::failed, step.code,
                      with_step("step", st.plan[i].name, step.message));
      }
    }
    finish(OpState::canceled, "canceled", "canceled; every completed step was compensated");
  }

  SagaDecision m_d;
  int64_t m_now;
};

std::optional<size_t> find_step(const SagaState& s, const std::string& name) {
  for (size_t i = 0; i < s.plan.size(); ++i) {
    if (s.plan[i].name == name) return i;
  }
  return std::nullopt;
}

SagaDecision unchanged(const SagaState& s) {
  SagaDecision d;
  d.state = s;
  return d;
}

SagaDecision on_step_event(const SagaState& state, size_t i, const SagaInput& in) {
  const StepStatus& before = state.steps[i];
  if (!step_in_flight(before.state)) return unchanged(state);  // never sent, or its outcome is known
  Machine m(state, in.now);
  StepStatus& st = m.s().steps[i];
  const std::string& name = state.plan[i].name;
  if (in.state == OpState::processing) {
    if (st.state != StepState::pending) return unchanged(state);  // a repeat, or a settle delivery's
    st.state = StepState::processing;
    st.attempt = std::max(st.attempt, in.attempt);
    m.note("step_processing", name);
    m.mark_processing();
    return m.take();
  }
  if (in.state == OpState::pending) return unchanged(state);  // the decoder refuses it; never trusted
  bool settled = st.state == StepState::settling;
  st.attempt = std::max(st.attempt, in.attempt);
  st.ended_at = in.now;
  st.code = in.code;
  st.message = in.message;
  switch (in.state) {
    case OpState::completed:
      st.state = StepState::completed;
      if (st.code.empty()) st.code = "success";
      st.data = in.data;
      m.note("step_completed", name, st.code, st.message);
      break;
    case OpState::rejected:
      st.state = StepState::rejected;
      if (st.code.empty()) st.code = "error";
      m.note("step_rejected", name, st.code, st.message);
      break;
    case OpState::canceled:
      if (settled) {
        // The answer to a settle: the service recorded that it never ran
        // it, and never will. Its attempts ran out.
        st.state = StepState::failed;
        st.code = "worker_timeout";
        st.message = "no worker finished it in " + std::to_string(before.attempt) + " attempts; it never ran";
        m.note("step_failed", name, st.code, st.message);
      } else {
        st.state = StepState::canceled;
        if (st.code.empty()) st.code = "canceled";
        m.note("step_canceled", name, st.code, st.message);
      }
      break;
    default:  // failed (processing and pending are handled above)
      st.state = StepState::failed;
      if (st.code.empty()) st.code = "error";
      m.note("step_failed", name, st.code, st.message);
      break;
  }
  m.mark_processing();
  m.advance();
  return m.take();
}

SagaDecision on_compensation_event(const SagaState& state, size_t i, const SagaInput& in) {
  if (!comp_in_flight(state.steps[i].compensation.state)) return unchanged(state);
  Machine m(state, in.now);
  CompStatus& c = m.s().steps[i].compensation;
  const std::string& name = state.plan[i].name;
  if (in.state == OpState::processing) {
    if (c.state != CompState::pending) return unchanged(state);
    c.state = CompState::processing;
    c.attempt = std::max(c.attempt, in.attempt);
    m.note("compensation_processing", name);
    return m.take();
  }
  if (in.state == OpState::pending) return unchanged(state);
  c.attempt = std::max(c.attempt, in.attempt);
  if (in.state == OpState::completed) {
    c.state = CompState::completed;
    c.code = in.code.empty() ? "success" : in.code;
    c.message = in.message;
    c.ended_at = in.now;
    m.note("compensation_completed", name, c.code, c.message);
  } else {
    // A compensation must not be refused: a rejected, failed (or, never
    // asked for, canceled) outcome is recorded by the service and final.
    m.fail_compensation(i, in.code, in.message);
  }
  m.advance();
  return m.take();
}

SagaDecision on_gave_up(const SagaState& state, const StepRef& ref, size_t i, const SagaInput& in) {
  Machine m(state, in.now);
  if (ref.compensation) {
    if (!comp_in_flight(state.steps[i].compensation.state)) return unchanged(state);
    CompStatus& c = m.s().steps[i].compensation;
    c.attempt = std::max(c.attempt, in.attempt);
    m.fail_compensation(i, "worker_timeout",
                        "no worker finished it: " + std::to_string(c.attempt) + " attempts each ran out of their lease");
    m.advance();
    return m.take();
  }
  if (!step_in_flight(state.steps[i].state)) return unchanged(state);
  // A first give-up, or another settle round: a settle is sent again until
  // a worker answers, since nothing else can say whether the step ran.
  m.start_settling(i, in.attempt);
  return m.take();
}

}  // namespace

const char* to_string(StepState s) {
  return name_in(k_step_state_names, s, "waiting");
}

const char* to_string(CompState s) {
  return name_in(k_comp_state_names, s, "none");
}

std::optional<StepState> parse_step_state(const std::string& s) {
  return state_in(k_step_state_names, s);
}

std::optional<CompState> parse_comp_state(const std::string& s) {
  return state_in(k_comp_state_names, s);
}

SagaState new_saga(std::string op_id, std::vector<StepPlan> plan) {
  SagaState s;
  s.op_id = std::move(op_id);
  s.steps.resize(plan.size());
  s.plan = std::move(plan);
  return s;
}

std::string step_request_id(const std::string& op_id, const std::string& step) { return op_id + "." + step; }

std::string compensation_request_id(const std::string& op_id, const std::string& step) {
  return op_id + "." + step + k_undo_suffix;
}

std::optional<StepRef> parse_step_request_id(const std::string& id) {
  if (id.size() < k_uuid_length + 2 || id[k_uuid_length] != '.') return std::nullopt;
  StepRef ref;
  ref.op_id = id.substr(0, k_uuid_length);
  if (!looks_like_uuid(ref.op_id)) return std::nullopt;
  std::string rest = id.substr(k_uuid_length + 1);
  const std::string undo = k_undo_suffix;
  if (rest.size() > undo.size() && rest.compare(rest.size() - undo.size(), undo.size(), undo) == 0) {
    ref.compensation = true;
    rest.resize(rest.size() - undo.size());
  }
  if (rest.empty() || rest.size() > k_max_step_name) return std::nullopt;
  for (char c : rest) {
    if (!step_name_char(c)) return std::nullopt;
  }
  ref.step = std::move(rest);
  return ref;
}

SagaDecision next(const SagaState& state, const SagaInput& in) {
  if (is_terminal(state.op_state) || state.plan.empty() || state.steps.size() != state.plan.size()) {
    return unchanged(state);  // late, or a state no saga can have
  }
  switch (in.kind) {
    case SagaInput::Kind::start: {
      bool fresh = std::all_of(state.steps.begin(), state.steps.end(),
                               [](const StepStatus& x) { return x.state == StepState::waiting; });
      if (!fresh || state.cancel_requested) return unchanged(state);
      Machine m(state, in.now);
      m.advance();
      return m.take();
    }
    case SagaInput::Kind::cancel: {
      if (state.cancel_requested) return unchanged(state);
      Machine m(state, in.now);
      m.s().cancel_requested = true;
      m.note("cancel_requested", "");
      for (size_t i = 0; i < state.steps.size(); ++i) {
        StepState st = state.steps[i].state;
        // A settle already carries cancel; compensations are never canceled.
        if (st == StepState::pending || st == StepState::processing) {
          m.cancel_command(step_request_id(state.op_id, state.plan[i].name));
        }
      }
      m.advance();
      return m.take();
    }
    case SagaInput::Kind::step_event:
    case SagaInput::Kind::gave_up: {
      auto ref = parse_step_request_id(in.request_id);
      if (!ref || ref->op_id != state.op_id) return unchanged(state);
      auto i = find_step(state, ref->step);
      if (!i) return unchanged(state);
      if (in.kind == SagaInput::Kind::gave_up) return on_gave_up(state, *ref, *i, in);
      return ref->compensation ? on_compensation_event(state, *i, in) : on_step_event(state, *i, in);
    }
  }
  return unchanged(state);
}

SagaDecision resume(const SagaState& state, int default_max_attempts, int64_t now) {
  if (is_terminal(state.op_state) || state.plan.empty() || state.steps.size() != state.plan.size()) {
    return unchanged(state);
  }
  Machine m(state, now);
  for (size_t i = 0; i < state.steps.size(); ++i) {
    const StepStatus& st = state.steps[i];
    int max = m.max_attempts(i, default_max_attempts);
    if (st.state == StepState::settling) {
      m.send_step(i, Dispatch::What::settle, st.attempt + 1);  // no limit: see start_settling
    } else if (step_in_flight(st.state)) {
      // At least 2: the last daemon may have sent it without its dispatch
      // record committing, so it must never look like a first attempt,
      // which a cancel may take back as unseen (daemon/cancel.h).
      int attempt = std::max(st.attempt + 1, 2);
      if (attempt > max) m.start_settling(i, st.attempt);
      else m.send_step(i, Dispatch::What::step, attempt);
    }
    const CompStatus& c = st.compensation;
    if (comp_in_flight(c.state)) {
      if (c.attempt + 1 > max) {
        m.fail_compensation(i, "worker_timeout",
                            "no worker finished it: " + std::to_string(c.attempt) + " attempts each ran out of their lease");
      } else {
        m.send_step(i, Dispatch::What::compensation, c.attempt + 1);
      }
    }
  }
  m.advance();
  return m.take();
}

namespace {
nlohmann::json text_or_null(const std::string& s) { return s.empty() ? nlohmann::json() : nlohmann::json(s); }
nlohmann::json time_or_null(int64_t ms) { return ms > 0 ? nlohmann::json(format_rfc3339_ms(ms)) : nlohmann::json(); }
}  // namespace

nlohmann::json steps_json(const SagaState& state) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < state.plan.size() && i < state.steps.size(); ++i) {
    const StepPlan& p = state.plan[i];
    const StepStatus& st = state.steps[i];
    nlohmann::json compensation;  // null: none declared
    if (!p.compensate.empty()) {
      const CompStatus& c = st.compensation;
      compensation = {{"command", p.compensate},       {"state", to_string(c.state)},
                      {"code", text_or_null(c.code)},  {"message", text_or_null(c.message)},
                      {"attempt", c.attempt},          {"started_at", time_or_null(c.started_at)},
                      {"ended_at", time_or_null(c.ended_at)}};
    }
    out.push_back({{"name", p.name},
                   {"service", p.service},
                   {"command", p.command},
                   {"state", to_string(st.state)},
                   {"code", text_or_null(st.code)},
                   {"message", text_or_null(st.message)},
                   {"attempt", st.attempt},
                   {"started_at", time_or_null(st.started_at)},
                   {"ended_at", time_or_null(st.ended_at)},
                   {"compensation", std::move(compensation)}});
  }
  return out;
}

nlohmann::json command_steps_data(const SagaState& state, const Dispatch& dispatch) {
  nlohmann::json out = nlohmann::json::object();
  size_t end = dispatch.what == Dispatch::What::compensation ? dispatch.step + 1 : dispatch.step;
  for (size_t i = 0; i < end && i < state.steps.size() && i < state.plan.size(); ++i) {
    if (state.steps[i].state != StepState::completed) continue;
    out[state.plan[i].name] = {{"data", state.steps[i].data}};
  }
  return out;
}

}  // namespace asyncops::saga
