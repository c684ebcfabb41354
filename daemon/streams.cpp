#include "daemon/streams.h"

#include <nlohmann/json.hpp>

#include "shared/clock.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int k_page = 1000;

bool matches(const StreamRequest& req, const std::string& name, OpState state, const std::string& owner) {
  if (req.owner && *req.owner != owner) return false;
  if (req.state && *req.state != state) return false;
  if (!req.name.empty() && req.name != name) return false;
  return true;
}

// Writes store changes with seq > *pos (and, for the global stream, up to
// limit_seq when limit_seq > 0). Returns false if the client went away.
// Sets *ended when a per-operation stream wrote a terminal state.
bool replay_from_store(ReaderPool& readers, const StreamRequest& req, bool cloudevents,
                       int64_t* pos, int64_t limit_seq, const StreamWriter& write, bool* ended) {
  for (;;) {
    auto changes = readers.acquire()->changes_after(*pos, k_page, req.op_id);
    for (const Change& c : changes) {
      if (limit_seq > 0 && c.seq > limit_seq) return true;
      *pos = c.seq;
      if (!req.op_id.empty() || matches(req, c.op.name, c.op.state, c.op.owner)) {
        if (!write(format_sse_event(c.seq, c.kind, operation_json_text(c.op), c.op.updated_at, cloudevents))) {
          return false;
        }
      }
      if (!req.op_id.empty() && is_terminal(c.op.state)) {
        *ended = true;
        return true;
      }
    }
    if (changes.size() < static_cast<size_t>(k_page)) return true;
  }
}

}  // namespace

std::string format_sse_event(int64_t seq, const std::string& kind, const std::string& op_json,
                             int64_t at_ms, bool cloudevents) {
  std::string data = op_json;
  if (cloudevents) {
    nlohmann::json op = nlohmann::json::parse(op_json, nullptr, false);
    std::string id = op.is_object() ? op.value("id", "") : "";
    nlohmann::json ce = {{"specversion", "1.0"},
                         {"id", std::to_string(seq)},
                         {"source", "/operations"},
                         {"type", "asyncops.operation." + kind},
                         {"subject", id},
                         {"time", format_rfc3339_ms(at_ms)},
                         {"datacontenttype", "application/json"},
                         {"data", op}};
    data = ce.dump();
  }
  return "id: " + std::to_string(seq) + "\ndata: " + data + "\n\n";
}

void run_stream(ChangeHub& hub, ReaderPool& readers, const StreamRequest& req,
                const StreamOptions& options, const StreamWriter& write) {
  // Subscribe before reading the store, so that no change falls between.
  auto sub = hub.subscribe(req.op_id);
  int64_t start = hub.latest_seq();
  if (!write("retry: " + std::to_string(options.retry_ms) + "\n\n")) return;
  bool ended = false;
  int64_t pos = 0;

  if (!req.op_id.empty()) {
    if (req.last_event_id >= 0) {
      pos = req.last_event_id;
      if (!replay_from_store(readers, req, req.cloudevents, &pos, 0, write, &ended) || ended) return;
    } else {
      // Begin with the current state: the operation's latest change.
      auto all = readers.acquire()->changes_after(0, 100000, req.op_id);
      if (all.empty()) return;
      const Change& now = all.back();
      if (!write(format_sse_event(now.seq, now.kind, operation_json_text(now.op), now.op.updated_at,
                                  req.cloudevents))) {
        return;
      }
      if (is_terminal(now.op.state)) return;
      pos = now.seq;
    }
  } else if (req.last_event_id >= 0) {
    pos = req.last_event_id;
    if (!replay_from_store(readers, req, req.cloudevents, &pos, start, write, &ended)) return;
    // Everything up to start was committed before we subscribed, so the
    // replay saw all of it; what comes after arrives through the hub.
    pos = std::max(pos, start);
  } else {
    pos = start;
  }

  std::vector<Notice> notices;
  while (!hub.is_shut_down()) {
    bool woke = sub->wait(Clock::now() + options.heartbeat);
    if (hub.is_shut_down()) return;
    if (!woke) {
      if (!write(": keep-alive\n\n")) return;
      continue;
    }
    if (!req.op_id.empty()) {
      // One operation: its changes come from the store by index, which
      // never has a gap.
      if (!replay_from_store(readers, req, req.cloudevents, &pos, 0, write, &ended) || ended) return;
      continue;
    }
    notices.clear();
    if (!hub.notices_after(pos, &notices)) {
      // This stream fell behind the ring: read the gap from the store.
      if (!replay_from_store(readers, req, req.cloudevents, &pos, 0, write, &ended)) return;
      continue;
    }
    for (const Notice& n : notices) {
      pos = n.seq;
      if (!matches(req, n.name, n.state, n.owner)) continue;
      if (!write(format_sse_event(n.seq, n.kind, n.op_json, n.at, req.cloudevents))) return;
    }
  }
}

}  // namespace asyncops
