#pragma once
// WsChannel: the WebSocket protocol at /ws (docs/websocket.md) as plain
// functions of text frames, without sockets, so that it can be unit-tested.
// The server (http_server.cpp) owns one per connection, on the
// connection's strand, and only moves frames between it and the socket.
//
//   client -> server  {"subscribe": "<operation id>"}
//                     {"subscribe": {"state": "...", "name": "..."}, "last_event_id": N}
//                     {"unsubscribe": <the same argument>}
//   server -> client  {"subscribed": <argument>}   {"unsubscribed": <argument>}
//                     {"seq": N, "operation": {...}, "kind": "...", "step": "..." | null}
//                     {"end": "<operation id>"}
//                     {"error": {problem+json}}
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/change_hub.h"
#include "daemon/gateway.h"
#include "daemon/push_channel.h"
#include "store/store.h"
#include "daemon/streams.h"

namespace asyncops {

class WsChannel : public PushChannel {
 public:
  static constexpr size_t k_max_subscriptions = 256;

  // grant: what the client may see (GET /ws was admitted by the Gateway).
  // wake runs on the commit thread when a subscription may have a change
  // due; it must only schedule a poll() (see ChangeFeed).
  WsChannel(ChangeHub& hub, ReaderPool& readers, WebSocketGrant grant, std::function<void()> wake);

  // Handles one text frame from the client and appends the frames to send
  // back (an acknowledgement or an error) to out.
  void on_message(const std::string& text, std::vector<std::string>* out) override;

  // Appends the change frames due now, at most max, and the {"end": id} of
  // each per-operation subscription that ended. Returns true when more are
  // due at once (poll again without waiting for a wake-up).
  bool poll(std::vector<std::string>* out, size_t max) override;

  size_t subscriptions() const { return m_subs.size(); }

 private:
  struct Subscription {
    nlohmann::json key;  // the subscribe argument, as unsubscribe names it
    std::string op_id;   // set: one operation
    std::unique_ptr<ChangeFeed> feed;
  };
  void subscribe(const nlohmann::json& arg, const nlohmann::json& last_event_id, std::vector<std::string>* out);
  void unsubscribe(const nlohmann::json& arg, std::vector<std::string>* out);

  ChangeHub& m_hub;
  ReaderPool& m_readers;
  WebSocketGrant m_grant;
  std::function<void()> m_wake;
  std::vector<Subscription> m_subs;
  size_t m_next = 0;  // round-robin start for poll()
};

// One change as a frame: {"seq":N,"operation":OP,"kind":K,"step":S}, OP the
// item's operation JSON as it is, K its history kind, S the saga step's
// name or null for the operation's own change (docs/websocket.md).
std::string ws_change_frame(const FeedItem& item);

// {"error": problem} as a frame.
std::string ws_error_frame(const Problem& p);

}  // namespace asyncops
