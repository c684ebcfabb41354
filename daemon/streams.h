#pragma once
// Server-Sent Events: one operation's changes (/operations/{id}/events) or
// every change (/events), each event's id being its history sequence
// number, so that a client that reconnects with Last-Event-ID receives
// exactly what came after, in order, with no gap and no duplicate.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "daemon/change_hub.h"
#include "daemon/store.h"

namespace asyncops {

struct StreamRequest {
  std::string op_id;             // set: one operation's stream, which ends at its terminal state
  std::optional<OpState> state;  // /events filters
  std::string name;
  std::optional<std::string> owner;  // /events: only this owner's operations when set
  int64_t last_event_id = -1;    // -1: none given
  bool cloudevents = false;      // data as a CloudEvents 1.0 JSON envelope around the operation
};

struct StreamOptions {
  std::chrono::milliseconds heartbeat{15000};  // a ":" comment line when nothing else was sent
  int retry_ms = 2000;                         // the retry: hint sent first
};

// Writes one chunk to the client; false when the client has gone away.
using StreamWriter = std::function<bool(const std::string&)>;

// Runs a stream until it ends (terminal state, client gone, or shutdown).
// REQUIRES: for a per-operation stream, the operation exists.
void run_stream(ChangeHub& hub, ReaderPool& readers, const StreamRequest& req,
                const StreamOptions& options, const StreamWriter& write);

// One SSE event: "id: SEQ\ndata: JSON\n\n".
std::string format_sse_event(int64_t seq, const std::string& kind, const std::string& op_json,
                             int64_t at_ms, bool cloudevents);

}  // namespace asyncops
