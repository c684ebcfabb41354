#include "daemon/ws_channel.h"

#include <algorithm>
#include <limits>

#include "shared/json_limits.h"
#include "shared/problem.h"
#include "shared/state.h"

namespace asyncops {
namespace {

using nlohmann::json;

constexpr int k_max_depth = 8;  // a subscribe message is two levels deep

Problem bad_message(const std::string& detail) {
  return make_problem(400, detail, "invalid_message");
}

}  // namespace

std::string ws_change_frame(const FeedItem& i) {
  // The operation's JSON is copied in as it is, not parsed again. kind and
  // step come after it (they were added later), so the frame still starts
  // {"seq":N,"operation": as it always did.
  std::string step = i.step.empty() ? "null" : nlohmann::json(i.step).dump();
  return "{\"seq\":" + std::to_string(i.seq) + ",\"operation\":" + i.op_json + ",\"kind\":\"" + i.kind +
         "\",\"step\":" + step + "}";
}

std::string ws_error_frame(const Problem& p) { return "{\"error\":" + to_json(p) + "}"; }

WsChannel::WsChannel(ChangeHub& hub, ReaderPool& readers, WebSocketGrant grant, std::function<void()> wake)
    : m_hub(hub), m_readers(readers), m_grant(std::move(grant)), m_wake(std::move(wake)) {}

void WsChannel::on_message(const std::string& text, std::vector<std::string>* out) {
  json msg = parse_json_shallow(text, k_max_depth);
  if (msg.is_discarded() || !msg.is_object()) {
    out->push_back(ws_error_frame(bad_message("a message is a JSON object: {\"subscribe\": ...} or {\"unsubscribe\": ...}")));
    return;
  }
  if (msg.contains("subscribe")) {
    subscribe(msg["subscribe"], msg.contains("last_event_id") ? msg["last_event_id"] : json(), out);
  } else if (msg.contains("unsubscribe")) {
    unsubscribe(msg["unsubscribe"], out);
  } else {
    out->push_back(ws_error_frame(bad_message("unknown message: expected subscribe or unsubscribe")));
  }
}

void WsChannel::subscribe(const json& arg, const json& last_event_id, std::vector<std::string>* out) {
  StreamRequest sr;
  if (!last_event_id.is_null()) {
    if (!last_event_id.is_number_integer() || last_event_id.get<int64_t>() < 0) {
      out->push_back(ws_error_frame(bad_message("last_event_id must be a seq from this stream (an integer >= 0)")));
      return;
    }
    sr.last_event_id = last_event_id.get<int64_t>();
  }
  if (arg.is_string()) {
    sr.op_id = arg.get<std::string>();
    auto op = m_readers.acquire()->get_operation(sr.op_id);
    // Another principal's operation answers exactly as an unknown one.
    if (!op || (m_grant.owner && op->owner != *m_grant.owner)) {
      out->push_back(ws_error_frame(
          make_problem(404, "no operation " + sr.op_id.substr(0, 100), "operation_not_found")));
      return;
    }
  } else if (arg.is_object()) {
    for (const auto& [k, v] : arg.items()) {
      if (k == "state") {
        auto s = v.is_string() ? parse_state(v.get<std::string>()) : std::nullopt;
        if (!s) {
          out->push_back(ws_error_frame(bad_message("state must be one of " + state_names_text())));
          return;
        }
        sr.state = s;
      } else if (k == "name") {
        if (!v.is_string()) {
          out->push_back(ws_error_frame(bad_message("name must be a string")));
          return;
        }
        sr.name = v.get<std::string>();
      } else {
        out->push_back(ws_error_frame(bad_message("a filter has state and name only, not " + k.substr(0, 50))));
        return;
      }
    }
    sr.owner = m_grant.owner;
  } else {
    out->push_back(ws_error_frame(bad_message("subscribe takes an operation id or a filter object")));
    return;
  }
  for (const Subscription& s : m_subs) {
    if (s.key == arg) {
      out->push_back(ws_error_frame(make_problem(
          409, "already subscribed to " + arg.dump().substr(0, 100), "already_subscribed")));
      return;
    }
  }
  if (m_subs.size() >= k_max_subscriptions) {
    out->push_back(ws_error_frame(make_problem(
        400, "at most " + std::to_string(k_max_subscriptions) + " subscriptions per connection",
        "too_many_subscriptions")));
    return;
  }
  Subscription s;
  s.key = arg;
  s.op_id = sr.op_id;
  s.feed = std::make_unique<ChangeFeed>(m_hub, m_readers, std::move(sr), m_wake);
  m_subs.push_back(std::move(s));
  out->push_back(json{{"subscribed", arg}}.dump());
  m_wake();  // what is due at once (the current state, a replay) comes with the next poll
}

void WsChannel::unsubscribe(const json& arg, std::vector<std::string>* out) {
  auto it = std::find_if(m_subs.begin(), m_subs.end(), [&](const Subscription& s) { return s.key == arg; });
  if (it == m_subs.end()) {
    out->push_back(ws_error_frame(
        make_problem(404, "not subscribed to " + arg.dump().substr(0, 100), "not_subscribed")));
    return;
  }
  m_subs.erase(it);
  out->push_back(json{{"unsubscribed", arg}}.dump());
}

bool WsChannel::poll(std::vector<std::string>* out, size_t max) {
  bool more = false;
  std::vector<FeedItem> items;
  size_t n = m_subs.size();
  for (size_t k = 0; k < n && out->size() < max; ++k) {
    size_t i = (m_next + k) % m_subs.size();
    items.clear();
    if (m_subs[i].feed->poll(&items, max - out->size())) more = true;
    for (const FeedItem& item : items) out->push_back(ws_change_frame(item));
  }
  if (n > 0) m_next = (m_next + 1) % n;
  // Ended per-operation subscriptions say so once and are dropped.
  for (auto it = m_subs.begin(); it != m_subs.end();) {
    if (!it->op_id.empty() && it->feed->ended() && !m_hub.is_shut_down()) {
      out->push_back(json{{"end", it->op_id}}.dump());
      it = m_subs.erase(it);
    } else {
      ++it;
    }
  }
  if (out->size() >= max && n > 0) more = true;
  return more;
}

}  // namespace asyncops
