#pragma once
// PushChannel: a message protocol over a long-lived connection, as plain
// functions of text, without sockets. The server (http_server.cpp) owns
// one per WebSocket or per push SSE stream, on the connection's strand,
// and only moves text between it and the socket. Implemented by WsChannel
// (/ws, docs/websocket.md) and by the SignalR hub's transport
// (/hubs/operations, daemon/signalr_hub.h).
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace asyncops {

class PushChannel {
 public:
  virtual ~PushChannel() = default;
  // Handles one message from the client and appends the messages to send
  // back at once to out.
  virtual void on_message(const std::string& text, std::vector<std::string>* out) = 0;
  // Appends the messages due now, at most max. Returns true when more are
  // due at once (poll again without waiting for a wake-up).
  virtual bool poll(std::vector<std::string>* out, size_t max) = 0;
  // The protocol is over: the server sends what poll() handed out, then
  // closes the connection normally.
  virtual bool finished() const { return false; }
};

// Makes a connection's channel. wake runs on any thread (the commit
// thread, a timer) when poll() may have something due; it must only
// schedule a poll() on the connection's strand.
using PushChannelFactory = std::function<std::unique_ptr<PushChannel>(std::function<void()> wake)>;

}  // namespace asyncops
