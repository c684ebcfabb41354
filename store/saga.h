#pragma once
// The saga state machine (issue 14; docs/design/sagas.md): a pure function
// of a saga's state and one input, with no I/O. The store calls it inside
// the transaction that applies the input (a step's event, the daemon's
// give-up, a cancel), writes the state it returns and the history notes, and
// hands the dispatches to the dispatcher after the commit. After a restart
// resume() says what to send again from the state the store holds alone.
//
// A saga is one operation whose route declares steps. Each step is a command
// of its own with the request id "{op id}.{step}"; its compensation, if the
// step completed and the saga does not complete, is a command with the
// request id "{op id}.{step}.undo". Workers dedupe by request id, so each
// has at most one effect, however often it is delivered.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"
#include "shared/state.h"

namespace asyncops::saga {

// One step as the route declared it, frozen into the saga when it is
// accepted: a routes file edited later does not change a saga in flight.
struct StepPlan {
  std::string name;        // [A-Za-z0-9_-], 1 to k_max_step_name bytes, unique in the saga
  std::string service;
  std::string command;
  std::string compensate;  // the compensating command; "" for none
  int64_t timeout_ms = 0;  // the lease of one attempt; 0: the daemon's --lease
  int max_attempts = 0;    // 0: the daemon's --max-attempts
};

// The longest step name: "{36-byte UUID}.{name}.undo" must fit in the
// protocol's 64-byte request id (docs/protocol.md §3).
inline constexpr size_t k_max_step_name = k_max_step_name_bytes;  // 22
// The most steps a route may declare: each completed step's data (at most
// 1 MiB, an event's limit) travels in later commands (16 MiB each).
inline constexpr size_t k_max_steps = k_max_saga_steps;  // 16

// waiting: not sent yet. pending: handed to the dispatcher (its history
// kind is step_dispatched). processing: a worker said so. settling: its
// attempts ran out without an outcome; it is sent again with cancel: true
// until a worker answers with the outcome it recorded (docs/design/sagas.md,
// "Settling"). skipped: the saga ended before it. The rest are the
// worker's recorded outcome.
enum class StepState { waiting, pending, processing, settling, completed, rejected, failed, canceled, skipped };
// none: nothing to undo (the step did not complete, or declares no
// compensation, or the saga completed). waiting: to run after the
// compensations of later steps. abandoned: a later compensation failed, so
// this one never ran.
enum class CompState { none, waiting, pending, processing, completed, failed, abandoned };

const char* to_string(StepState s);
const char* to_string(CompState s);
std::optional<StepState> parse_step_state(const std::string& s);
std::optional<CompState> parse_comp_state(const std::string& s);

struct CompStatus {
  CompState state = CompState::none;
  std::string code;
  std::string message;
  int attempt = 0;
  int64_t started_at = 0;  // ms since epoch; 0: not yet
  int64_t ended_at = 0;
};

struct StepStatus {
  StepState state = StepState::waiting;
  std::string code;
  std::string message;
  int attempt = 0;
  int64_t started_at = 0;
  int64_t ended_at = 0;
  nlohmann::json data;  // a completed step's data; null otherwise
  CompStatus compensation;
};

struct SagaState {
  std::string op_id;
  OpState op_state = OpState::pending;
  std::string code;     // the operation's, once terminal
  std::string message;
  bool cancel_requested = false;
  std::vector<StepPlan> plan;
  std::vector<StepStatus> steps;  // one per plan entry, same order
};

// A new saga's state: every step waiting.
SagaState new_saga(std::string op_id, std::vector<StepPlan> plan);

// What a request id names. A plain operation id names no step.
struct StepRef {
  std::string op_id;
  std::string step;
  bool compensation = false;
};
std::string step_request_id(const std::string& op_id, const std::string& step);
std::string compensation_request_id(const std::string& op_id, const std::string& step);
// The step a request id names, if it has the form of a step's or a
// compensation's; nullopt for anything else (including a bare op id).
std::optional<StepRef> parse_step_request_id(const std::string& request_id);

struct SagaInput {
  enum class Kind {
    start,       // the saga was just accepted
    step_event,  // a worker's event for a step or compensation request id
    gave_up,     // the dispatcher gave up on a request id after `attempt` attempts
    cancel,      // a client asked to cancel the operation
  };
  Kind kind = Kind::start;
  std::string request_id;                 // step_event, gave_up
  OpState state = OpState::processing;    // step_event: the event's state
  std::string code;
  std::string message;
  nlohmann::json data;                    // step_event, completed: the step's data
  int attempt = 1;                        // step_event: the event's; gave_up: attempts made
  int64_t now = 0;                        // ms since epoch
};

// A command to hand to the dispatcher once the transaction commits.
struct Dispatch {
  enum class What {
    step,          // the step's command, request id {op}.{step}
    settle,        // the step's command again with cancel: true (same id)
    compensation,  // the step's compensation, request id {op}.{step}.undo
  };
  size_t step = 0;
  What what = What::step;
  int attempt = 1;  // the attempt to send
  std::string request_id;
};

// One history entry to append, in order: kind is a step kind
// ("step_dispatched", "step_processing", "step_completed", "step_rejected",
// "step_failed", "step_canceled", "step_settling", "step_skipped",
// "compensation_dispatched", "compensation_processing",
// "compensation_completed", "compensation_failed", "compensation_abandoned")
// with step set, or an operation kind ("processing", "cancel_requested", a
// terminal state) with step empty.
struct HistoryNote {
  std::string kind;
  std::string step;
  std::string code;
  std::string message;
};

struct SagaDecision {
  bool changed = false;  // false: the input changes nothing (duplicate, late, unknown); write nothing
  SagaState state;       // the new state (the old one when !changed)
  std::vector<Dispatch> dispatch;
  // Forward steps whose command the dispatcher must cancel (a cancel
  // decision per request id: taken back, or the workers told).
  std::vector<std::string> cancel;
  std::vector<HistoryNote> history;
};

// Applies one input. Never throws for any input: an event that does not fit
// the state (a duplicate, a late outcome, one for a step never sent, one
// after the end) is ignored (changed = false).
SagaDecision next(const SagaState& state, const SagaInput& input);

// After a restart: what to send again, from the stored state alone. Every
// step or compensation in flight is sent again with its stored attempt + 1
// (a step at least 2: it may have been sent before the stop without the
// record of it committing, so a cancel must not take it back as unseen),
// or, if that would pass its max_attempts (default_max_attempts when the
// plan says 0), given up on at once, as if its last lease had run out.
// A saga with nothing in flight is advanced (a state the store cannot hold,
// handled anyway). Terminal sagas: changed = false.
SagaDecision resume(const SagaState& state, int default_max_attempts, int64_t now);

// The operation document's "steps" (docs/design/sagas.md §7): per step
// {name, service, command, state, code, message, attempt, started_at,
// ended_at, compensation}, where compensation is null for a step that
// declares none, else {command, state, code, message, attempt, started_at,
// ended_at}. Empty codes, messages and times are null; times are RFC 3339.
// A step's data is not in it.
nlohmann::json steps_json(const SagaState& state);

// What the command of a dispatch carries in "steps" (docs/design/sagas.md
// §6): {name: {"data": ...}} for every completed step before it, and for a
// compensation its own step's too (what it undoes).
nlohmann::json command_steps_data(const SagaState& state, const Dispatch& dispatch);

}  // namespace asyncops::saga
