#pragma once
// The operation model: what the daemon stores and tells about an operation,
// independent of where it is stored. An operation is one accepted command;
// its history is the append-only list of what happened to it; a Change is
// one history entry with the operation as it was after it, which is what
// notifications and streams carry.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"
#include "shared/state.h"
#include "store/saga.h"

namespace asyncops {

// One step of a saga operation as readers see it: the plan frozen at the
// accept and the step's status, without its data (docs/design/sagas.md §7).
struct StepView {
  saga::StepPlan plan;
  saga::StepStatus status;  // status.data is null
};

struct OperationRecord {
  int64_t seq = 0;  // acceptance order; assigned by the store
  std::string id;
  std::string name;
  std::string service;
  OpState state = OpState::pending;
  std::string code;
  std::string message;
  std::string resource;
  std::string origin;
  std::string owner;
  nlohmann::json params = nlohmann::json::object();
  nlohmann::json payload = nlohmann::json::object();
  int attempt = 0;
  int64_t created_at = 0;  // ms since epoch
  int64_t updated_at = 0;
  bool cancel_requested = false;
  std::string retry_of;  // the operation this one retries (POST /operations/{id}/retry); "" if none
  std::string worker;    // the last worker that reported on it; "" until one did
  // A saga (issue 14): its number of steps, 0 for a plain operation. The
  // readers fill steps for a saga (get_operation, changes_after); the
  // writer's records leave it empty unless it says otherwise.
  int step_count = 0;
  std::vector<StepView> steps;
};

// An Idempotency-Key, scoped to its owner, with a hash of the request it
// was first used with.
struct IdempotencyKey {
  std::string owner;
  std::string key;
  std::string request_hash;
};

// The public JSON of an operation (see the OpenAPI file). A saga's has
// "steps" (saga::steps_json) when op.steps is filled; a plain one has none.
nlohmann::json operation_json(const OperationRecord& op);
// The same, as text, written without building the tree: for the 202 body,
// waits and change notices (operation_json(op).dump() gives the same bytes).
std::string operation_json_text(const OperationRecord& op);
// operation_json plus what GET /operations/{id} and `store export` add: the
// original request {method, path, body}, the params, the worker, and the
// ids of the operations that retry this one (retries, oldest first).
nlohmann::json operation_detail_json(const OperationRecord& op, const std::vector<std::string>& retries);
// The command a worker receives for op.
Command command_for(const OperationRecord& op);
// The same, moving op's params and payload into the command (op keeps
// empty objects): for the commit path, which has no further use for them.
Command take_command(OperationRecord& op);

// What a history entry records. Its text (to_string) is what the store,
// the API's history JSON and the SSE event types carry.
enum class HistoryKind {
  accepted,          // the operation was stored (state pending)
  dispatched,        // sent to a worker, attempt 1
  redelivered,       // sent again, attempt > 1
  processing,        // a worker reported it started
  cancel_requested,  // a cancel was asked for; the state did not change
  completed,         // the terminal states, as the state names
  rejected,
  failed,
  canceled,
  superseded,    // a worker's outcome replaced the daemon's give-up (docs/protocol.md §9)
  late_outcome,  // an older attempt's outcome after another attempt ended it; the state did not change
  // A saga's steps and compensations (docs/design/sagas.md §7): the entry's
  // step names which. The state is the operation's.
  step_dispatched,
  step_redelivered,
  step_processing,
  step_completed,
  step_rejected,
  step_failed,
  step_canceled,
  step_settling,
  step_skipped,
  compensation_dispatched,
  compensation_redelivered,
  compensation_processing,
  compensation_completed,
  compensation_failed,
  compensation_abandoned,
};

const char* to_string(HistoryKind k);
// Whether k is about a saga's compensation (compensation_*), whose request
// id is "{op}.{step}.undo"; the other step kinds' is "{op}.{step}".
bool is_compensation_kind(HistoryKind k);
// The kind named by text (to_string's inverse); nullopt for any other text.
std::optional<HistoryKind> parse_history_kind(std::string_view text);
// The kind of the entry that moves an operation into state s: accepted
// for pending, else the state's own name.
HistoryKind history_kind_of(OpState s);

struct HistoryEntry {
  int64_t seq = 0;  // one increasing sequence across all operations
  std::string op_id;
  HistoryKind kind = HistoryKind::accepted;
  OpState state = OpState::pending;
  std::string code;
  std::string message;
  int64_t at = 0;
  std::string step;  // a saga step's name for step and compensation kinds; "" for the operation's
};

// The public JSON of a history entry: {seq, kind, state, code, message, at,
// step} (step null for an operation's entry).
nlohmann::json history_json(const HistoryEntry& h);

// One change to one operation, as committed: what notifications carry.
struct Change {
  int64_t seq = 0;  // the history entry's seq
  HistoryKind kind = HistoryKind::accepted;  // the history entry's kind
  OperationRecord op;
  // A saga's step change: the step's name, and the request id it is about
  // ("{op}.{step}" or "{op}.{step}.undo"), by which the dispatcher keys its
  // leases. Both "" for an operation's own change.
  std::string step;
  std::string request_id;
};

// Whether c is the change that made its operation terminal: once per
// operation. A change that supersedes the daemon's give-up, or records a
// late outcome, leaves an operation terminal that was terminal already.
bool ends_operation(const Change& c);

struct OperationFilter {
  std::optional<OpState> state;
  std::string name;
  int64_t since_ms = 0;      // created_at >= since_ms when > 0
  int64_t until_ms = 0;      // created_at <= until_ms when > 0
  std::string code;          // code = this when not empty
  // resource = this when not empty; a value ending in "/" (e.g. "/users/")
  // matches every resource under it.
  std::string resource;
  int64_t before_seq = 0;    // keyset cursor: seq < before_seq when > 0
  std::optional<std::string> owner;  // only this owner's operations when set
  int limit = 50;
};

struct Resource {
  std::string path;
  nlohmann::json body;
  int64_t updated_at = 0;
  // The principal that created it (resource_owners), fixed at the create's
  // accept and never moved by a later write; "" when nobody owns it (then
  // only an admin may read an owner-only resource).
  std::string owner;
};

// Whether event e may replace op's terminal state: only the daemon's give-up
// (failed/worker_timeout) can be replaced, and only by a worker's terminal
// outcome for that request that says something else (issue 15: the final
// state never contradicts what the service recorded).
bool may_supersede(const OperationRecord& op, const Event& e);

// What the daemon knows of the sender of a worker's event: not on the
// wire, set by the tracker from the connection.
struct EventSender {
  // With CURVE: the services the sender's key may serve (its allow-list
  // entry); the event may only touch operations of these. Empty: any.
  std::vector<std::string> services;

  // Whether the sender may report on an operation of service.
  bool may_serve(const std::string& service) const;
};

// Who may command a resource (issue 15). A resource is owned by the
// principal whose command claimed it, in the transaction that stored that
// command; a later write never moves it. The group committer checks this
// before it stores a command, in the same transaction.
struct OwnershipCheck {
  struct Path {
    std::string path;
    // A path nobody owns does not exist: its ids are generated at accept,
    // so only a create can give it an owner. Otherwise it is free.
    bool unowned_is_unknown = false;
  };
  // Each must be owned by the operation's owner (or be free); empty for an
  // admin or the local operator, who may command anything.
  std::vector<Path> paths;
  // Recorded as the operation owner's once it is stored, unless it is
  // owned already; "" claims nothing.
  std::string claim;
};

}  // namespace asyncops
