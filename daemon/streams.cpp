#include "daemon/streams.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "shared/clock.h"
#include "shared/json_text.h"

namespace asyncops {
namespace {

constexpr size_t k_page = 1000;

FeedItem item_of(const Change& c) {
  FeedItem i;
  i.seq = c.seq;
  i.kind = to_string(c.kind);
  i.step = c.step;
  i.op_id = c.op.id;
  i.op_json = operation_json_text(c.op);
  i.at = c.op.updated_at;
  i.terminal = is_terminal(c.op.state);
  return i;
}

FeedItem item_of(const Notice& n) {
  FeedItem i;
  i.seq = n.seq;
  i.kind = to_string(n.kind);
  i.step = n.step;
  i.op_id = n.op_id;
  i.op_json = n.op_json;
  i.at = n.at;
  i.terminal = is_terminal(n.state);
  return i;
}

}  // namespace

std::string format_sse_event(const FeedItem& item, bool cloudevents) {
  const int64_t seq = item.seq;
  std::string data = item.op_json;
  if (cloudevents) {
    nlohmann::json op = nlohmann::json::parse(item.op_json, nullptr, false);
    std::string id = op.is_object() ? op.value("id", "") : "";
    nlohmann::json ce = {{"specversion", "1.0"},
                         {"id", std::to_string(seq)},
                         {"source", "/operations"},
                         {"type", "asyncops.operation." + item.kind},
                         {"subject", id},
                         {"time", format_rfc3339_ms(item.at)},
                         {"datacontenttype", "application/json"},
                         {"data", op}};
    // An extension attribute (CloudEvents 1.0 §3.1.4: lower-case letters
    // and digits): present only for a step's change.
    if (!item.step.empty()) ce["step"] = item.step;
    data = json_text(ce, nlohmann::json::error_handler_t::strict);
  }
  return "id: " + std::to_string(seq) + "\ndata: " + data + "\n\n";
}

bool stream_matches(const StreamRequest& req, const std::string& name, OpState state, const std::string& owner) {
  if (req.owner && *req.owner != owner) return false;
  if (req.state && *req.state != state) return false;
  if (!req.name.empty() && req.name != name) return false;
  return true;
}

ChangeFeed::ChangeFeed(ChangeHub& hub, ReaderPool& readers, StreamRequest req, std::function<void()> wake)
    : m_hub(hub), m_readers(readers), m_req(std::move(req)) {
  // Subscribe before reading the store, so that no change falls between.
  m_sub = m_hub.subscribe(m_req.op_id, std::move(wake));
  m_start = m_hub.latest_seq();
}

bool ChangeFeed::replay(std::vector<FeedItem>* out, size_t max, int64_t limit_seq) {
  size_t page = std::min(max, k_page);
  if (page == 0) return true;
  auto changes = m_readers.acquire()->changes_after(m_pos, static_cast<int>(page), m_req.op_id);
  for (const Change& c : changes) {
    if (limit_seq > 0 && c.seq > limit_seq) return false;
    m_pos = c.seq;
    if (!m_req.op_id.empty() || stream_matches(m_req, c.op.name, c.op.state, c.op.owner)) {
      out->push_back(item_of(c));
    }
    if (!m_req.op_id.empty() && is_terminal(c.op.state)) {
      m_ended = true;
      return false;
    }
  }
  return changes.size() == page;
}

void ChangeFeed::first_poll(std::vector<FeedItem>* out, size_t max) {
  m_started = true;
  if (m_req.op_id.empty()) {
    if (m_req.last_event_id >= 0) {
      m_pos = m_req.last_event_id;
      m_catching_up = true;
    } else {
      m_pos = m_start;
    }
    return;
  }
  if (m_req.last_event_id >= 0) {
    m_pos = m_req.last_event_id;
    return;
  }
  // Begin with the current state: the operation's latest change.
  auto all = m_readers.acquire()->changes_after(0, 100000, m_req.op_id);
  if (all.empty()) {
    m_ended = true;
    return;
  }
  out->push_back(item_of(all.back()));
  m_pos = all.back().seq;
  if (out->back().terminal) m_ended = true;
}

bool ChangeFeed::poll(std::vector<FeedItem>* out, size_t max) {
  if (m_ended) return false;
  if (m_hub.is_shut_down()) {
    m_ended = true;
    return false;
  }
  if (!m_started) {
    first_poll(out, max);
    if (m_ended) return false;
    return true;  // what came since the subscription is due too
  }
  if (!m_req.op_id.empty()) {
    // One operation: its changes come from the store by index, which never
    // has a gap.
    return replay(out, max, 0);
  }
  if (m_catching_up) {
    if (replay(out, max, m_start)) return true;
    // Everything up to m_start was committed before the subscription, so
    // the replay saw all of it; what comes after arrives through the hub.
    m_catching_up = false;
    m_pos = std::max(m_pos, m_start);
    return true;
  }
  std::vector<Notice> notices;
  if (!m_hub.notices_after(m_pos, &notices, max)) {
    // This feed fell behind the ring: read the gap from the store.
    return replay(out, max, 0);
  }
  for (const Notice& n : notices) {
    m_pos = n.seq;
    if (!stream_matches(m_req, n.name, n.state, n.owner)) continue;
    out->push_back(item_of(n));
  }
  return notices.size() == max;
}

}  // namespace asyncops
