#pragma once
// The ZeroMQ wire envelope: what the daemon PUSHes to workers and what
// workers PUBlish back to the tracker. docs/protocol.md is the contract; this
// file is its one implementation. Every message is two frames:
//   frame 0: the kind, ASCII ("command", "event", "heartbeat")
//   frame 1: one JSON object, UTF-8
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

// daemon -> worker, over PUSH/PULL.
struct Command {
  std::string id;          // the operation id, also the request id
  std::string name;        // e.g. "create_user"
  std::string service;     // e.g. "users"
  std::string origin;      // "POST /users"
  std::string resource;    // the resource the command acts on, e.g. "/users/0190..."
  nlohmann::json params = nlohmann::json::object();   // path parameters, e.g. {"id": "..."}
  nlohmann::json payload = nlohmann::json::object();  // the request body
  std::string created_at;  // RFC 3339
  int attempt = 1;         // 1 on first delivery, +1 on each redelivery
  bool cancel = false;     // the client canceled it: end it "canceled" unless already handled
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
  // Not on the wire: set by the tracker from the sender's CURVE key. When not
  // empty, the event may only touch operations of these services.
  std::vector<std::string> allowed_services;
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

struct Frames {
  std::string kind;
  std::string body;
};

Frames encode(const Command& c);
Frames encode(const Event& e);
Frames encode(const Heartbeat& h);
Frames encode(const CancelNotice& c);
Frames encode(const FenceNotice& f);

// Each decoder checks the kind, that the body is a JSON object, and the type
// of every field; an error names the first problem. Unknown fields are
// ignored, so a newer peer can add fields.
Result<Command> decode_command(const std::string& kind, const std::string& body);
Result<Event> decode_event(const std::string& body);
Result<Heartbeat> decode_heartbeat(const std::string& body);
Result<CancelNotice> decode_cancel(const std::string& body);
Result<FenceNotice> decode_fence(const std::string& body);

}  // namespace asyncops
