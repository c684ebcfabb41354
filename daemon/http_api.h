#pragma once
// HttpApi: the HTTP/1.1 and WebSocket front end of the Gateway, on
// Boost.Beast and Asio (issue 11). It owns the listening socket and a small
// fixed set of I/O threads that run every connection as a chain of
// callbacks: no connection, request, wait or stream holds a thread. A wait
// (?wait, Prefer: wait), an SSE stream and a WebSocket are woken by the
// ChangeHub; an accept's 202 is written from its commit's completion.
//
// Beast lives in http_server.cpp alone: this header is all the rest of the
// daemon sees of it.
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/gateway.h"
#include "shared/result.h"

namespace asyncops {

// What a request may be before the Gateway sees it (RFC 9112 framing).
struct HttpLimits {
  size_t max_header_bytes = 8192;  // one or all header fields: 431
  size_t max_url_bytes = 2048;     // the request target: 414
  size_t max_body_bytes = 1 << 20; // 413
};

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  HttpLimits limits;
  size_t io_threads = 0;  // 0: one per core
  // Threads for the streams (SSE, /ws, the SignalR hub over plain TCP):
  // -1, one per core; 0, none (streams stay on the I/O threads).
  int stream_threads = -1;
  size_t keep_alive_max_requests = 10000;
  int listen_backlog = 4096;
  // Deadlines: the whole request head, each step of the body, the wait
  // for the next request on a kept-alive connection, and each write.
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{10000};
  std::chrono::milliseconds idle_timeout{5000};
  std::chrono::milliseconds write_timeout{10000};
  // Open connections at most. At the limit, a new connection closes the
  // oldest idle one (between requests, or with its head incomplete); if
  // none is idle, the new one is closed.
  size_t max_connections = 20000;
  // WebSocket: frames queued for one client before it counts as slow and
  // is closed with k_ws_close_slow_consumer; the ping interval.
  size_t ws_max_queue = 1024;
  std::chrono::milliseconds ws_ping_interval{15000};
  // Both set: HTTPS (asio::ssl) with this PEM certificate (chain) and key.
  std::string tls_cert;
  std::string tls_key;
};

// The WebSocket close code for a consumer too slow for its bounded queue
// (docs/websocket.md); the client resumes with last_event_id.
inline constexpr int k_ws_close_slow_consumer = 4001;

class HttpApi {
 public:
  HttpApi(Gateway& gateway, HttpOptions options);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Binds the listening socket; returns the bound port. Fails too when the
  // TLS certificate or key could not be loaded.
  Result<int> bind();
  // Starts the I/O threads; serves until stop().
  void start();
  // Stops accepting, closes every connection and joins the I/O threads.
  // Deferred replies that complete later are dropped.
  void stop();

  size_t connections() const;

  class Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

// One request parsed from raw bytes exactly as a connection parses it
// (Beast's parser plus the strict checks of RFC 9112 made here): the seam
// for unit tests and the fuzzer. Exactly one of request and error is set,
// unless need_more (the bytes end before the request does).
struct ParsedRequest {
  std::optional<ApiRequest> request;
  std::optional<ApiReply> error;  // problem+json; the connection closes after it
  bool need_more = false;
  bool keep_alive = false;
};
ParsedRequest parse_http_request(std::string_view bytes, const HttpLimits& limits);

// The bytes of a complete (not streamed) reply, status line to body, as
// the server writes them: the reply's headers in order, then
// `Cache-Control: no-store`, `Content-Type` and `Content-Length` (for a
// status that has a body; a HEAD reply keeps the length and drops the
// body) and `Connection: close` when the connection closes after it. A
// header whose name or value holds CR or LF is left out.
std::string render_http_response(const ApiReply& reply, bool head, bool keep_alive);
// The same reply serialized by Beast's http::response and serializer, as
// the server wrote it before render_http_response: for tests, which
// compare the two byte for byte.
std::string render_http_response_with_beast(ApiReply reply, bool head, bool keep_alive);

}  // namespace asyncops
