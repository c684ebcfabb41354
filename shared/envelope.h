#pragma once
// The ZeroMQ wire envelope: what the daemon sends to workers (commands,
// grants, notices) and what workers send back (ready, claims, events,
// heartbeats). docs/protocol.md is the contract; this
// file is its one implementation. Every message is two frames:
//   frame 0: the kind, ASCII ("command", "event", "heartbeat")
//   frame 1: one JSON object, UTF-8
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/result.h"
#include "shared/state.h"

namespace asyncops {

inline constexpr int k_protocol_version = 1;
inline constexpr const char* k_kind_command = "command";
inline constexpr const char* k_kind_event = "event";
inline constexpr const char* k_kind_heartbeat = "heartbeat";
inline constexpr const char* k_kind_cancel = "cancel";
inline constexpr const char* k_kind_fence = "fence";
// The commands channel's flow control (docs/protocol.md §4a).
inline constexpr const char* k_kind_ready = "ready";
inline constexpr const char* k_kind_claim = "claim";
inline constexpr const char* k_kind_grant = "grant";

// Limits on what a peer may send (issue 15; docs/protocol.md, "Limits").
// A message over any of them is refused whole: decoded into an error, never
// into a value, and the receiver counts and logs it. Depth counts the
// envelope object as level 1, so an event's "data" may nest 127 levels.
inline constexpr int k_max_message_depth = 128;
inline constexpr size_t k_max_event_bytes = 1 << 20;       // 1 MiB
inline constexpr size_t k_max_event_values = 10000;        // values and keys
inline constexpr size_t k_max_command_bytes = 16 << 20;    // 16 MiB: a body of --max-body and more
inline constexpr size_t k_max_command_values = 1000000;
inline constexpr size_t k_max_heartbeat_bytes = 64 << 10;  // 64 KiB
inline constexpr size_t k_max_heartbeat_requests = 1024;   // request ids in one heartbeat
inline constexpr size_t k_max_cancel_bytes = 4096;
inline constexpr size_t k_max_flow_bytes = 64 << 10;     // ready, claim
inline constexpr size_t k_max_grant_bytes = 256 << 10;   // grant: up to 1,024 entries with reasons
inline constexpr int64_t k_max_credit = 1024;            // ready.credit
inline constexpr size_t k_max_claims = 1024;             // entries in one claim
inline constexpr int64_t k_max_seq = int64_t{1} << 53;   // ready.seq, command.ready_seq: exact in a double
inline constexpr int64_t k_max_lease_ms = 365LL * 24 * 3600 * 1000;  // command.lease_ms (a longer lease is sent as this)
inline constexpr size_t k_max_id_bytes = 128;        // worker, service, type, code
inline constexpr size_t k_max_host_bytes = 256;
inline constexpr size_t k_max_request_id_bytes = 64; // any request id (id, request_id, requests)
// A saga's step names (docs/design/sagas.md §2): "{UUID}.{name}.undo" fits in
// k_max_request_id_bytes. store/saga.h checks that its limits are these.
inline constexpr size_t k_max_step_name_bytes = 22;
inline constexpr size_t k_max_saga_steps = 16;  // entries in a command's "steps"
inline constexpr size_t k_max_resource_bytes = 4096;
inline constexpr size_t k_max_message_bytes = 16384; // an event's "message"
// The events socket drops the connection of a peer that sends a frame over
// this (ZMQ_MAXMSGSIZE), before it is read into memory; so does a worker's
// command socket for frames over k_max_command_transport_bytes.
inline constexpr size_t k_max_transport_bytes = 4 << 20;
inline constexpr size_t k_max_command_transport_bytes = 32 << 20;

// Why a decoder refused a message, for the rejected-messages metric.
enum class Refusal { malformed, too_large, too_deep, too_many_fields, field_too_long, too_many_ids };
// "malformed", "too_large", "too_deep", "too_many_fields", "field_too_long", "too_many_ids".
const char* to_string(Refusal r);
inline constexpr int k_refusal_count = 6;

// What a saga's command is part of (docs/protocol.md §4b): id is
// "{operation}.{step}", or "{operation}.{step}.undo" for a compensation.
struct SagaRef {
  std::string operation;  // the operation id, a UUID
  std::string step;       // the step's name
  bool compensation = false;
};

// A Command's max_attempts for a settle (docs/design/sagas.md §3): sent
// again until a worker answers, with no limit.
inline constexpr int k_unlimited_attempts = -1;

// daemon -> worker, over ROUTER/DEALER (the commands channel).
struct Command {
  std::string id;          // the request id: the operation id, or a saga step's id (is_request_id)
  std::string name;        // e.g. "create_user"
  std::string service;     // e.g. "users"
  std::string origin;      // "POST /users"
  std::string resource;    // the resource the command acts on, e.g. "/users/0190..."
  nlohmann::json params = nlohmann::json::object();   // path parameters, e.g. {"id": "..."}
  nlohmann::json payload = nlohmann::json::object();  // the request body
  std::string created_at;  // RFC 3339
  int attempt = 1;         // 1 on first delivery, +1 on each redelivery
  bool cancel = false;     // the client canceled it: end it "canceled" unless already handled
  // A saga's step or compensation only ("saga", "steps" on the wire):
  // empty operation for a plain command.
  SagaRef saga;
  // {step name: {"data": ...}} of every earlier step that completed; null
  // for a plain command.
  nlohmann::json steps;
  // On the commands channel only, set by the dispatcher as it sends
  // (protocol §4a, "Starting without a claim"); 0 when absent:
  // ready_seq, the `seq` of the last `ready` it had received on that
  // connection; lease_ms, the lease the send started.
  int64_t ready_seq = 0;
  int64_t lease_ms = 0;
  // Dispatcher-only, never on the wire: a step's own lease and attempts
  // (0: the dispatcher's --lease and --max-attempts; max_attempts may be
  // k_unlimited_attempts).
  std::chrono::milliseconds lease{0};
  int max_attempts = 0;
  // Daemon-only, never fields on the wire: params and payload as the store
  // wrote them (their dump()), which encode() then writes as they are
  // instead of dumping the trees again. Empty: dump the trees. Whoever
  // changes params or payload must clear the matching text.
  std::string params_text;
  std::string payload_text;
};

// worker -> tracker, over PUB/SUB.
struct Event {
  std::string request_id;
  std::string type;     // e.g. "user_created", "create_user_rejected"
  OpState state = OpState::processing;  // never pending
  std::string code;     // e.g. "success", "email_in_use"; empty for processing
  std::string message;
  std::string resource;  // the resource the outcome is about
  nlohmann::json data;  // the resource's representation; null when none
  bool deleted = false; // the resource no longer exists
  std::string worker;   // the publishing worker's id
  int attempt = 1;
  std::string time;     // RFC 3339
  // The resource's version in the service's own store after this change
  // (every write of the resource raises it); 0: none sent. The read model
  // keeps the highest, so the service's commit order decides.
  int64_t version = 0;
};

// worker -> tracker, over PUB/SUB, about once a second.
struct Heartbeat {
  std::string worker;
  std::string service;
  std::string host;
  int64_t pid = 0;
  int64_t in_flight = 0;
  std::vector<std::string> requests;  // request ids being handled now: renews their leases
  std::string time;
  // Last, so that aggregate initialisers of the fields above still work.
  std::string kind;  // the service's kind: users, exec or http; "" when not sent
};

// daemon -> workers, over PUB/SUB (the control socket): frame 0 "cancel".
struct CancelNotice {
  std::string request_id;
};

// daemon -> workers, control socket, frame 0 "fence": the daemon gave up on
// request_id (failed/worker_timeout); a worker must not run it any more.
struct FenceNotice {
  std::string request_id;
  std::string service;  // the operation's service; "" when not sent
};

// worker -> daemon, commands channel: how many commands this worker can
// start now. Absolute: the daemon sends to the connection only while fewer
// than `credit` of the commands it sent there are still under lease.
struct ReadyMessage {
  std::string worker;
  std::string service;
  int64_t credit = 0;  // 0 .. k_max_credit
  // 1 .. k_max_seq, rising for the life of the worker process; 0: absent
  // (a worker that always claims).
  int64_t seq = 0;
};

// One command a worker is about to start: its id and the attempt it got.
struct ClaimEntry {
  std::string id;
  int attempt = 1;
};

// worker -> daemon, commands channel: "may I start these?" One per batch.
struct ClaimMessage {
  std::vector<ClaimEntry> claims;  // at most k_max_claims
};

// daemon -> worker, commands channel: the answer to one claim.
struct GrantEntry {
  std::string id;
  int attempt = 1;
  bool cancel = false;   // granted, but a client asked to cancel it
  std::string reason;    // refused only: "lease_lost"
};
struct GrantMessage {
  int64_t lease_ms = 0;  // the lease each grant renews, from the daemon's answer
  std::vector<GrantEntry> granted;
  std::vector<GrantEntry> refused;
};

struct Frames {
  std::string kind;
  std::string body;
};

Frames encode(const Command& c);
Frames encode(const Event& e);
Frames encode(const Heartbeat& h);
Frames encode(const CancelNotice& c);
Frames encode(const FenceNotice& f);
Frames encode(const ReadyMessage& r);
Frames encode(const ClaimMessage& c);
Frames encode(const GrantMessage& g);

// Each decoder checks the kind, that the body is a JSON object within the
// limits above, and the type of every field; an error names the first
// problem, and *why (when given) says which kind of problem it was. Size and
// depth are checked on the raw bytes before anything is parsed. Unknown
// fields are ignored, so a newer peer can add fields.
Result<Command> decode_command(const std::string& kind, const std::string& body, Refusal* why = nullptr);
Result<Event> decode_event(const std::string& body, Refusal* why = nullptr);
Result<Heartbeat> decode_heartbeat(const std::string& body, Refusal* why = nullptr);
Result<CancelNotice> decode_cancel(const std::string& body, Refusal* why = nullptr);
Result<FenceNotice> decode_fence(const std::string& body, Refusal* why = nullptr);
Result<ReadyMessage> decode_ready(const std::string& body, Refusal* why = nullptr);
Result<ClaimMessage> decode_claim(const std::string& body, Refusal* why = nullptr);
Result<GrantMessage> decode_grant(const std::string& body, Refusal* why = nullptr);

// Whether s is a request id (docs/protocol.md §3): a UUID (an operation's
// id), "{UUID}.{step}" (a saga's step) or "{UUID}.{step}.undo" (its
// compensation), where step is 1 to k_max_step_name_bytes characters from
// [A-Za-z0-9_-]. At most 58 + 5 bytes, so within k_max_request_id_bytes.
bool is_request_id(const std::string& s);

// The request id of an event body that could not be decoded, for the log:
// the request id (is_request_id) after the first "request_id" key in the raw
// text, or "" if there is none. Does not parse the body, so it is safe on
// any input.
std::string peek_request_id(const std::string& body);

// Whether e, once encoded, is within the event limits above; if not, the
// error says why. A worker checks its outcome with this before it records
// and publishes it.
Status check_event_limits(const Event& e);
// The same, keeping the encoding it checked in *body (not written when
// e.data nests too deep to encode).
Status check_event_limits(const Event& e, std::string* body);
// The same for e already encoded: body must be encode(e).body (so e.data
// was shallow enough to encode).
// Answers exactly as decode_event(body) would, at a fraction of its cost
// when e is plainly within the limits (the usual case): then it reads e's
// fields and makes one pass over body, and builds no tree.
Status check_encoded_event(const Event& e, const std::string& body);

}  // namespace asyncops
