#include "daemon/signalr_hub.h"

#include <algorithm>
#include <cctype>

#include "daemon/auth.h"
#include "shared/json_limits.h"
#include "shared/log.h"
#include "shared/problem.h"
#include "shared/json_text.h"

namespace asyncops {
namespace {

using nlohmann::json;

constexpr int k_max_depth = 16;  // an invocation with a filter argument is four levels deep

std::string record(const json& j) {
  return json_text(j) + k_signalr_record_separator;
}

const std::string& ping_record() {
  static const std::string r = record(json{{"type", 6}});
  return r;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// WsChannel's change frame {"seq":N,"operation":OP,"kind":K,"step":S} as
// the invocation operationUpdated(OP), without parsing OP again; "" for
// other frames ({"end": id}: the hub protocol has nothing for it). OP ends
// where the last ,"kind": begins: K and S are JSON strings (or null), whose
// quotes are escaped, so the text cannot occur after it.
std::string as_invocation(const std::string& frame) {
  static const std::string k_seq = "{\"seq\":", k_op = ",\"operation\":", k_kind = ",\"kind\":";
  if (frame.compare(0, k_seq.size(), k_seq) != 0) return "";
  size_t at = frame.find(k_op);
  if (at == std::string::npos || frame.back() != '}') return "";
  size_t start = at + k_op.size();
  size_t end = frame.rfind(k_kind);
  if (end == std::string::npos || end < start) end = frame.size() - 1;
  return "{\"type\":1,\"target\":\"operationUpdated\",\"arguments\":[" + frame.substr(start, end - start) + "]}" +
         k_signalr_record_separator;
}

// A random id for a connection or its token: 43 base64url characters.
std::string random_id() { return new_token().substr(4); }

}  // namespace

// ------------------------------------------------------------ connection

HubConnection::HubConnection(ChangeHub& hub, ReaderPool& readers, WebSocketGrant grant, std::string principal,
                             std::string id, std::string token, const SignalrOptions& options)
    : m_hub(hub),
      m_readers(readers),
      m_grant(std::move(grant)),
      m_principal(std::move(principal)),
      m_id(std::move(id)),
      m_token(std::move(token)),
      m_options(options),
      m_created(Clock::now()),
      m_last_sent(m_created) {
  auto slot = m_wake;
  m_channel = std::make_unique<WsChannel>(m_hub, m_readers, m_grant, [slot] {
    MutexLock lock(&slot->mutex);
    if (slot->wake) slot->wake();
  });
}

HubConnection::~HubConnection() { close(); }

bool HubConnection::claim() {
  MutexLock lock(&m_mutex);
  if (m_claimed || m_closed) return false;
  m_claimed = true;
  m_last_sent = Clock::now();
  return true;
}

void HubConnection::set_wake(std::function<void()> wake) {
  if (wake) {
    MutexLock lock(&m_mutex);
    m_attached = true;
  }
  MutexLock lock(&m_wake->mutex);
  m_wake->wake = std::move(wake);
}

void HubConnection::wake() {
  MutexLock lock(&m_wake->mutex);
  if (m_wake->wake) m_wake->wake();
}

void HubConnection::on_message(const std::string& payload, std::vector<std::string>* out) {
  MutexLock lock(&m_mutex);
  if (m_closed || m_finished) return;
  size_t before = out->size();
  m_partial += payload;
  size_t start = 0;
  for (size_t end; !m_finished && (end = m_partial.find(k_signalr_record_separator, start)) != std::string::npos;
       start = end + 1) {
    handle_record(m_partial.substr(start, end - start), out);
  }
  m_partial.erase(0, start);
  if (m_partial.size() > m_options.max_message_bytes && !m_finished) {
    m_partial.clear();
    finish_with("a record is longer than " + std::to_string(m_options.max_message_bytes) + " bytes", out);
  }
  if (out->size() > before) m_last_sent = Clock::now();
}

void HubConnection::receive(const std::string& payload) {
  {
    std::vector<std::string> replies;
    on_message(payload, &replies);
    MutexLock lock(&m_mutex);
    for (auto& r : replies) m_outbox.push_back(std::move(r));
  }
  wake();
}

void HubConnection::handle_record(const std::string& text, std::vector<std::string>* out) {
  json msg = parse_json_shallow(text, k_max_depth);
  if (msg.is_discarded() || !msg.is_object()) {
    return finish_with(m_handshaken ? "a record is not a JSON object of the hub protocol"
                                    : "the handshake is not a JSON object",
                       out);
  }
  if (!m_handshaken) {
    // {"protocol":"json","version":1}: only the JSON protocol is spoken.
    auto protocol = msg.find("protocol");
    auto version = msg.find("version");
    if (protocol == msg.end() || !protocol->is_string() || *protocol != "json") {
      out->push_back(record(json{{"error", "only the json hub protocol is supported"}}));
      m_finished = true;
      return;
    }
    if (version == msg.end() || !version->is_number_integer() || *version != 1) {
      out->push_back(record(json{{"error", "the json hub protocol is spoken in version 1 only"}}));
      m_finished = true;
      return;
    }
    m_handshaken = true;
    out->push_back(record(json::object()));
    return;
  }
  auto type = msg.find("type");
  if (type == msg.end() || !type->is_number_integer()) return finish_with("a record without a type", out);
  switch (type->get<int>()) {
    case 1:  // Invocation
      return invoke(msg, out);
    case 4: {  // StreamInvocation: no hub method streams
      auto id = msg.find("invocationId");
      if (id != msg.end() && id->is_string()) {
        out->push_back(record(json{{"type", 3}, {"invocationId", *id}, {"error", "no hub method streams"}}));
      }
      return;
    }
    case 2:  // StreamItem: the client streams nothing to the server here
    case 3:  // Completion: the server invokes nothing that returns a result
    case 5:  // CancelInvocation
    case 6:  // Ping
      return;
    case 7:  // Close
      m_finished = true;
      return;
    default:
      return finish_with("unknown message type " + std::to_string(type->get<int>()), out);
  }
}

void HubConnection::invoke(const json& msg, std::vector<std::string>* out) {
  json invocation_id;
  if (auto it = msg.find("invocationId"); it != msg.end() && it->is_string()) invocation_id = *it;
  auto reply_error = [&](const std::string& error) {
    if (!invocation_id.is_null()) {
      out->push_back(record(json{{"type", 3}, {"invocationId", invocation_id}, {"error", error}}));
    }
  };
  auto target_it = msg.find("target");
  if (target_it == msg.end() || !target_it->is_string()) return finish_with("an invocation without a target", out);
  json args = msg.value("arguments", json::array());
  if (!args.is_array()) return finish_with("an invocation's arguments are an array", out);
  std::string target = target_it->get<std::string>();
  json arg0 = args.size() > 0 ? args[0] : json();
  // Hub method names are case-insensitive, as in ASP.NET Core.
  std::string method = lower(target);
  json request;  // the WsChannel message that does it
  if (method == "subscribe") {
    if (!arg0.is_string()) return reply_error("Subscribe(operationId, lastEventId?) takes an operation id");
    request = {{"subscribe", arg0}};
    if (args.size() > 1 && !args[1].is_null()) request["last_event_id"] = args[1];
  } else if (method == "subscribeall" || method == "unsubscribe") {
    json filter = json::object();
    json last_event_id;
    if (arg0.is_object()) {
      for (const auto& [k, v] : arg0.items()) {
        if (k == "lastEventId" || k == "last_event_id") {
          last_event_id = v;
        } else if (!v.is_null()) {
          filter[k] = v;
        }
      }
    } else if (arg0.is_string() && method == "unsubscribe") {
      filter = arg0;
    } else if (!arg0.is_null()) {
      return reply_error(method == "subscribeall" ? "SubscribeAll(filter) takes {state?, name?, lastEventId?}"
                                                  : "Unsubscribe takes an operation id or a filter");
    }
    if (method == "subscribeall") {
      request = {{"subscribe", filter}};
      if (!last_event_id.is_null()) request["last_event_id"] = last_event_id;
    } else {
      request = {{"unsubscribe", filter}};
    }
  } else {
    return reply_error("unknown hub method '" + target.substr(0, 100) + "': Subscribe, SubscribeAll, Unsubscribe");
  }
  std::vector<std::string> frames;
  m_channel->on_message(request.dump(), &frames);
  for (const std::string& f : frames) {
    json j = json::parse(f, nullptr, false);
    if (j.is_object() && j.contains("error")) {
      const json& p = j["error"];
      return reply_error(p.value("detail", "refused") + " (" + p.value("code", "error") + ")");
    }
  }
  if (!invocation_id.is_null()) out->push_back(record(json{{"type", 3}, {"invocationId", invocation_id}}));
}

void HubConnection::finish_with(const std::string& error, std::vector<std::string>* out) {
  out->push_back(record(json{{"type", 7}, {"error", error}, {"allowReconnect", false}}));
  m_finished = true;
}

bool HubConnection::poll(std::vector<std::string>* out, size_t max) {
  MutexLock lock(&m_mutex);
  if (m_closed) return false;
  size_t before = out->size();
  size_t n = std::min(max, m_outbox.size());
  for (size_t i = 0; i < n; ++i) out->push_back(std::move(m_outbox[i]));
  m_outbox.erase(m_outbox.begin(), m_outbox.begin() + static_cast<std::ptrdiff_t>(n));
  bool more = !m_outbox.empty();
  auto now = Clock::now();
  if (m_handshaken && !m_finished) {
    if (out->size() == before && now - m_last_sent >= m_options.ping_interval && out->size() < max) {
      out->push_back(ping_record());
    }
    if (out->size() < max) {
      std::vector<std::string> frames;
      if (m_channel->poll(&frames, max - out->size())) more = true;
      for (const std::string& f : frames) {
        std::string r = as_invocation(f);
        if (!r.empty()) out->push_back(std::move(r));
      }
    } else {
      more = true;
    }
  }
  if (out->size() > before) m_last_sent = now;
  return more;
}

bool HubConnection::finished() const {
  MutexLock lock(&m_mutex);
  return m_finished && m_outbox.empty();
}

void HubConnection::close() {
  std::unique_ptr<WsChannel> channel;
  {
    MutexLock lock(&m_mutex);
    m_closed = true;
    channel = std::move(m_channel);
  }
  set_wake(nullptr);
  channel.reset();  // unsubscribes from the hub, outside m_mutex
}

bool HubConnection::closed() const {
  MutexLock lock(&m_mutex);
  return m_closed;
}

bool HubConnection::claimed() const {
  MutexLock lock(&m_mutex);
  return m_claimed;
}

bool HubConnection::expired(Clock::time_point now) const {
  MutexLock lock(&m_mutex);
  // Claimed but never attached: the transport's handshake failed.
  return !m_attached && now - m_created > m_options.start_timeout;
}

void HubConnection::wake_if_ping_due(Clock::time_point now) {
  bool due;
  {
    MutexLock lock(&m_mutex);
    due = m_claimed && !m_closed && m_handshaken && now - m_last_sent >= m_options.ping_interval;
  }
  if (due) wake();
}

// -------------------------------------------------------------------- hub

namespace {

// The channel a transport runs: the connection, forgotten when it ends.
class HubTransport : public PushChannel {
 public:
  HubTransport(std::shared_ptr<HubConnection> c, std::function<void()> forget)
      : m_connection(std::move(c)), m_forget(std::move(forget)) {}
  ~HubTransport() override {
    m_connection->close();
    m_forget();
  }
  void on_message(const std::string& text, std::vector<std::string>* out) override {
    m_connection->on_message(text, out);
  }
  bool poll(std::vector<std::string>* out, size_t max) override { return m_connection->poll(out, max); }
  bool finished() const override { return m_connection->finished(); }

 private:
  std::shared_ptr<HubConnection> m_connection;
  std::function<void()> m_forget;
};

}  // namespace

void SignalrHub::Registry::remove(const std::string& token) {
  std::shared_ptr<HubConnection> gone;
  {
    MutexLock lock(&mutex);
    auto it = by_token.find(token);
    if (it == by_token.end()) return;
    gone = std::move(it->second);
    by_token.erase(it);
  }
  gone->close();
}

SignalrHub::SignalrHub(ChangeHub& hub, ReaderPool& readers, SignalrOptions options)
    : m_hub(hub), m_readers(readers), m_options(options) {}

SignalrHub::~SignalrHub() {
  {
    MutexLock lock(&m_timer_mutex);
    m_stopping = true;
  }
  m_timer_cv.notify_all();
  if (m_timer.joinable()) m_timer.join();
  std::map<std::string, std::shared_ptr<HubConnection>> all;
  {
    MutexLock lock(&m_registry->mutex);
    all.swap(m_registry->by_token);
  }
  for (auto& [token, c] : all) c->close();
}

std::optional<nlohmann::json> SignalrHub::negotiate(const std::string& principal, const WebSocketGrant& grant) {
  auto c = std::make_shared<HubConnection>(m_hub, m_readers, grant, principal, random_id(), random_id(), m_options);
  {
    MutexLock lock(&m_registry->mutex);
    if (m_registry->by_token.size() >= m_options.max_connections) return std::nullopt;
    m_registry->by_token.emplace(c->token(), c);
  }
  {
    MutexLock lock(&m_timer_mutex);
    if (!m_timer.joinable() && !m_stopping) m_timer = std::thread([this] { run_timer(); });
  }
  json transports = json::array(
      {{{"transport", "WebSockets"}, {"transferFormats", {"Text"}}},
       {{"transport", "ServerSentEvents"}, {"transferFormats", {"Text"}}}});
  return json{{"negotiateVersion", 1},
              {"connectionId", c->id()},
              {"connectionToken", c->token()},
              {"availableTransports", transports}};
}

std::shared_ptr<HubConnection> SignalrHub::find(const std::string& token, const std::string& principal) const {
  MutexLock lock(&m_registry->mutex);
  auto it = m_registry->by_token.find(token);
  if (it == m_registry->by_token.end() || it->second->principal() != principal) return nullptr;
  return it->second;
}

PushChannelFactory SignalrHub::transport(std::shared_ptr<HubConnection> connection) {
  std::weak_ptr<Registry> registry = m_registry;
  return [connection, registry](std::function<void()> wake) -> std::unique_ptr<PushChannel> {
    connection->set_wake(std::move(wake));
    std::string token = connection->token();
    return std::make_unique<HubTransport>(connection, [registry, token] {
      if (auto r = registry.lock()) r->remove(token);
    });
  };
}

void SignalrHub::remove(const std::string& token) { m_registry->remove(token); }

size_t SignalrHub::size() const {
  MutexLock lock(&m_registry->mutex);
  return m_registry->by_token.size();
}

void SignalrHub::run_timer() {
  name_this_thread("aops-signalr");
  auto tick = std::clamp<std::chrono::milliseconds>(m_options.ping_interval / 4, std::chrono::milliseconds(10),
                                                    std::chrono::milliseconds(1000));
  for (;;) {
    {
      MutexLock lock(&m_timer_mutex);
      auto until = std::chrono::steady_clock::now() + tick;
      while (!m_stopping && m_timer_cv.wait_until(&m_timer_mutex, until)) {
      }
      if (m_stopping) return;
    }
    std::vector<std::shared_ptr<HubConnection>> all;
    {
      MutexLock r(&m_registry->mutex);
      for (auto& [token, c] : m_registry->by_token) all.push_back(c);
    }
    auto now = HubConnection::Clock::now();
    for (auto& c : all) {
      if (c->expired(now)) {
        m_registry->remove(c->token());
      } else {
        c->wake_if_ping_due(now);
      }
    }
    all.clear();
  }
}

}  // namespace asyncops
