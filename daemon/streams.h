#pragma once
// Server-Sent Events: one operation's changes (/operations/{id}/events) or
// every change (/events), each event's id being its history sequence
// number, so that a client that reconnects with Last-Event-ID receives
// exactly what came after, in order, with no gap and no duplicate.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/change_hub.h"
#include "store/store.h"

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

// One change as a stream delivers it.
struct FeedItem {
  int64_t seq = 0;
  std::string kind;     // the history kind (accepted, processing, completed, step_completed, ...)
  std::string step;     // a saga step's name for a step or compensation kind; "" for the operation's own
  std::string op_id;
  std::string op_json;  // the operation's JSON after this change
  int64_t at = 0;       // ms since epoch
  bool terminal = false;
};

// ChangeFeed: one client's cursor over the change stream, without a thread.
// It subscribes to the hub at construction (so that no change falls between
// the subscription and the first read); `wake` runs on the commit thread
// whenever a change may be waiting and must only schedule a poll() (post
// to the connection's strand). poll() hands out what is due, at most max
// items per call, reading from the hub's ring or, for a gap, the store.
// Not thread-safe: one connection (strand) owns it.
class ChangeFeed {
 public:
  // REQUIRES: for a per-operation feed, the caller checked the operation is
  // visible to the client.
  ChangeFeed(ChangeHub& hub, ReaderPool& readers, StreamRequest req, std::function<void()> wake);

  // Appends the items due now to out, at most max. Returns true when more
  // are due at once (poll again without waiting for a wake-up).
  bool poll(std::vector<FeedItem>* out, size_t max);
  // A per-operation feed ended (its operation is terminal, or unknown), or
  // the hub shut down. Nothing more will come.
  bool ended() const { return m_ended; }
  // The seq of the last change handed out (or skipped by the filter).
  int64_t position() const { return m_pos; }
  const StreamRequest& request() const { return m_req; }

 private:
  bool replay(std::vector<FeedItem>* out, size_t max, int64_t limit_seq);
  void first_poll(std::vector<FeedItem>* out, size_t max);

  ChangeHub& m_hub;
  ReaderPool& m_readers;
  StreamRequest m_req;
  std::shared_ptr<ChangeHub::Subscription> m_sub;
  int64_t m_start = 0;       // the hub's latest seq when subscribed
  int64_t m_pos = 0;
  bool m_started = false;
  bool m_catching_up = false;  // an /events replay up to m_start is unfinished
  bool m_ended = false;
};

// Whether an operation with these attributes passes a stream's filters.
bool stream_matches(const StreamRequest& req, const std::string& name, OpState state, const std::string& owner);

// One SSE event: "id: SEQ\ndata: JSON\n\n", JSON being the operation. With
// cloudevents, JSON is a CloudEvents 1.0 envelope around it: type
// "asyncops.operation.KIND", and the extension attribute "step" when the
// item is a saga step's change (docs/design/sagas.md §7).
std::string format_sse_event(const FeedItem& item, bool cloudevents);

}  // namespace asyncops
