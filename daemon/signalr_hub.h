#pragma once
// A SignalR-compatible hub at /hubs/operations (issue 12), so that an
// existing SignalR front end (the official @microsoft/signalr client, or
// .NET's) can follow operations. docs/browser.md has the whole contract.
//
// What is spoken: negotiate (negotiateVersion 1), the WebSockets and
// ServerSentEvents transports, the JSON hub protocol (a handshake, records
// ended by the 0x1E separator, pings both ways, close). The server invokes
// operationUpdated(operation); the client may invoke Subscribe(operationId
// [, lastEventId]), SubscribeAll(filter) and Unsubscribe(operationId or
// filter). Subscriptions are WsChannel's (docs/websocket.md): the same
// feeds, owner scoping, limits and errors.
//
// No Beast here: http_server.cpp moves text between a transport and a
// HubConnection through the PushChannel interface.
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/change_hub.h"
#include "daemon/push_channel.h"
#include "store/store.h"
#include "daemon/ws_channel.h"
#include "shared/mutex.h"

namespace asyncops {

// Ends every record of the JSON hub protocol.
inline constexpr char k_signalr_record_separator = '\x1e';

struct SignalrOptions {
  // The server pings a connection that sent nothing for this long (the
  // client gives up after 30 s of silence by default).
  std::chrono::milliseconds ping_interval{15000};
  // A negotiated connection that no transport took within this is dropped.
  std::chrono::milliseconds start_timeout{30000};
  size_t max_connections = 10000;  // negotiated and open, together
  size_t max_message_bytes = 64 * 1024;
};

// One SignalR connection: negotiated, then taken by one transport.
// Thread-safe: a WebSocket transport calls it on its strand, but the SSE
// transport's messages come in POSTs on other connections.
class HubConnection {
 public:
  using Clock = std::chrono::steady_clock;

  HubConnection(ChangeHub& hub, ReaderPool& readers, WebSocketGrant grant, std::string principal,
                std::string id, std::string token, const SignalrOptions& options);
  ~HubConnection();

  const std::string& id() const { return m_id; }
  const std::string& token() const { return m_token; }
  const std::string& principal() const { return m_principal; }

  // A transport takes the connection: false when one already has (or it
  // was closed). Then set_wake() with the transport's wake-up.
  bool claim();
  void set_wake(std::function<void()> wake);

  // Records from the client (one or more, each ended by 0x1E). Replies due
  // at once are appended to out (on_message) or queued for the next poll
  // with the transport woken (receive, for the SSE transport's POSTs).
  void on_message(const std::string& payload, std::vector<std::string>* out);
  void receive(const std::string& payload);
  // The records due now: queued replies, a ping when one is due, and each
  // change as an operationUpdated invocation. At most max.
  bool poll(std::vector<std::string>* out, size_t max);
  // The client closed the hub connection, or broke the protocol (a close
  // record was sent): the transport closes after what poll() handed out.
  bool finished() const;

  // The transport is gone (or DELETE): subscriptions end, wake-ups stop.
  void close();
  bool closed() const;
  bool claimed() const;
  // For the hub's timer: whether a negotiated connection was never taken
  // in time, and whether a ping is due (then the transport is woken).
  bool expired(Clock::time_point now) const;
  void wake_if_ping_due(Clock::time_point now);

 private:
  struct WakeSlot {
    Mutex mutex;
    std::function<void()> wake GUARDED_BY(mutex);  // only posts
  };
  void handle_record(const std::string& record, std::vector<std::string>* out) REQUIRES(m_mutex);
  void invoke(const nlohmann::json& msg, std::vector<std::string>* out) REQUIRES(m_mutex);
  void finish_with(const std::string& error, std::vector<std::string>* out) REQUIRES(m_mutex);
  void wake();

  ChangeHub& m_hub;
  ReaderPool& m_readers;
  const WebSocketGrant m_grant;
  const std::string m_principal, m_id, m_token;
  const SignalrOptions m_options;
  const Clock::time_point m_created;
  // Shared with the subscriptions' wake-ups, which run on the commit
  // thread: they never own the connection, so never destroy it there.
  std::shared_ptr<WakeSlot> m_wake = std::make_shared<WakeSlot>();

  mutable Mutex m_mutex;
  std::unique_ptr<WsChannel> m_channel GUARDED_BY(m_mutex);
  std::vector<std::string> m_outbox GUARDED_BY(m_mutex);  // replies to the SSE transport's POSTs
  std::string m_partial GUARDED_BY(m_mutex);  // a record not yet ended by 0x1E
  Clock::time_point m_last_sent GUARDED_BY(m_mutex);
  bool m_handshaken GUARDED_BY(m_mutex) = false;
  bool m_claimed GUARDED_BY(m_mutex) = false;
  bool m_attached GUARDED_BY(m_mutex) = false;  // a transport set its wake-up
  bool m_finished GUARDED_BY(m_mutex) = false;
  bool m_closed GUARDED_BY(m_mutex) = false;
};

// The hub: negotiated connections by token, and a timer thread (started
// with the first negotiate) that pings quiet connections and drops the
// ones no transport took. Thread-safe.
class SignalrHub {
 public:
  SignalrHub(ChangeHub& hub, ReaderPool& readers, SignalrOptions options = {});
  ~SignalrHub();
  SignalrHub(const SignalrHub&) = delete;
  SignalrHub& operator=(const SignalrHub&) = delete;

  // POST /hubs/operations/negotiate: a new connection for principal, which
  // sees what grant allows; the negotiate response (negotiateVersion 1).
  // nullopt when max_connections are open.
  std::optional<nlohmann::json> negotiate(const std::string& principal, const WebSocketGrant& grant);
  // The connection with this token if principal negotiated it (another
  // principal's token is as unknown).
  std::shared_ptr<HubConnection> find(const std::string& token, const std::string& principal) const;
  // The channel a transport runs for a claimed connection; the connection
  // is closed and forgotten when the channel is destroyed.
  PushChannelFactory transport(std::shared_ptr<HubConnection> connection);
  // Closes and forgets a connection (DELETE).
  void remove(const std::string& token);
  size_t size() const;

 private:
  struct Registry {
    mutable Mutex mutex;
    std::map<std::string, std::shared_ptr<HubConnection>> by_token GUARDED_BY(mutex);
    void remove(const std::string& token);
  };
  void run_timer();

  ChangeHub& m_hub;
  ReaderPool& m_readers;
  const SignalrOptions m_options;
  std::shared_ptr<Registry> m_registry = std::make_shared<Registry>();
  Mutex m_timer_mutex;
  CondVar m_timer_cv;
  bool m_stopping GUARDED_BY(m_timer_mutex) = false;
  std::thread m_timer;      // started by the first negotiate (under m_timer_mutex)
};

}  // namespace asyncops
