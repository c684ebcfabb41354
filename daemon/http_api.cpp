#include "daemon/http_api.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>

#include "daemon/elastic_pool.h"
#include "shared/log.h"

namespace asyncops {
namespace {

ApiRequest to_api_request(const httplib::Request& req) {
  ApiRequest r;
  r.method = req.method;
  r.path = req.path;
  for (const auto& [k, v] : req.params) r.query.emplace(k, v);  // first value wins
  for (const auto& [k, v] : req.headers) {
    std::string lower = k;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    r.headers.emplace(std::move(lower), v);
  }
  r.body = req.body;
  r.remote_addr = req.remote_addr;
  r.target_bytes = req.target.size();
  return r;
}

std::unique_ptr<httplib::Server> make_server(const HttpOptions& o) {
  if (!o.tls_cert.empty() || !o.tls_key.empty()) {
    return std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
  }
  return std::make_unique<httplib::Server>();
}

void apply_reply(const ApiReply& reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [k, v] : reply.headers) res.set_header(k, v);
  res.set_header("Cache-Control", "no-store");
  if (reply.stream) {
    // The stream runs on this connection's thread (the ElasticPool grows
    // for it) until it ends or the client goes away.
    auto stream = reply.stream;
    res.set_chunked_content_provider(reply.content_type, [stream](size_t, httplib::DataSink& sink) {
      stream([&sink](const std::string& chunk) {
        return sink.is_writable() && sink.write(chunk.data(), chunk.size());
      });
      sink.done();
      return true;
    });
    return;
  }
  if (reply.status == 204 || reply.status == 304) return;
  res.set_content(reply.body, reply.content_type);
}

}  // namespace

HttpApi::HttpApi(Gateway& gateway, HttpOptions options)
    : m_gateway(gateway), m_options(options), m_server(make_server(m_options)) {
  httplib::Server& s = *m_server;
  size_t min_t = m_options.min_threads, max_t = m_options.max_threads;
  s.new_task_queue = [min_t, max_t] { return new ElasticPool(min_t, max_t); };
  // Small responses must not wait for Nagle's algorithm (about 40 ms each).
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(m_options.keep_alive_max_requests);
  s.set_keep_alive_timeout(5);
  s.set_read_timeout(10);
  s.set_write_timeout(10);
  s.set_payload_max_length(m_options.max_body_bytes);
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT would let a second
  // daemon bind the same port and silently split the traffic.
  s.set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    m_listen_fd = sock;  // remembered to widen the listen backlog after bind
  });

  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    apply_reply(m_gateway.handle(to_api_request(req)), res);
  };
  // RFC 9112: a request with neither Content-Length nor Transfer-Encoding
  // has an empty body. cpp-httplib 0.11 answers such a POST/PUT/PATCH with
  // 400, which breaks `curl -X POST .../cancel`; answer it here, before
  // httplib tries to read a body.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    bool body_method = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE";
    if (!body_method || req.has_header("Content-Length") || req.has_header("Transfer-Encoding")) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    apply_reply(m_gateway.handle(to_api_request(req)), res);
    return httplib::Server::HandlerResponse::Handled;
  });
  s.Get(".*", handler);
  s.Post(".*", handler);
  s.Put(".*", handler);
  s.Patch(".*", handler);
  s.Delete(".*", handler);
  s.Options(".*", handler);

  // Errors httplib produces itself (payload too large, bad request line,
  // unsupported method) get a problem+json body like every other error.
  s.set_error_handler(httplib::Server::HandlerWithResponse(
      [](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string code = res.status == 413   ? "body_too_large"
                       : res.status == 414 ? "uri_too_long"
                       : res.status == 431 ? "headers_too_large"
                                           : "http_error";
    std::string detail = res.status == 413 ? "the body is larger than the limit"
                                           : std::string(status_phrase(res.status));
    bool needs_length = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    if (res.status == 400 && needs_length && !req.has_header("Content-Length") &&
        !req.has_header("Transfer-Encoding")) {
      code = "length_required";
      detail = req.method + " needs a Content-Length header (or chunked Transfer-Encoding)";
    }
    apply_reply(problem_reply({res.status, "", detail, code, "", {}}), res);
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                             std::exception_ptr ep) {
    std::string what = "unknown";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log_error("unhandled exception in a request", {{"path", req.path}, {"error", what}});
    apply_reply(problem_reply({500, "", "internal error", "internal_error", "", {}}), res);
  });
}

HttpApi::~HttpApi() { stop(); }

Result<int> HttpApi::bind() {
  if (!m_server->is_valid()) {
    return Error{"cannot load the TLS certificate " + m_options.tls_cert + " or key " + m_options.tls_key};
  }
  int port = m_options.port == 0 ? m_server->bind_to_any_port(m_options.host)
                                 : (m_server->bind_to_port(m_options.host, m_options.port)
                                        ? m_options.port
                                        : -1);
  if (port < 0) {
    return Error{"cannot listen on " + m_options.host + ":" + std::to_string(m_options.port) +
                 " (address in use, or not an address of this host)"};
  }
  // cpp-httplib 0.11 listens with a backlog of 5, so a burst of connects (a
  // thousand browsers reconnecting their streams after a restart) overflows
  // it and clients wait seconds for SYN retries. Listening again on the
  // bound socket only raises the backlog.
  if (m_listen_fd >= 0) ::listen(m_listen_fd, 4096);
  return port;
}

void HttpApi::start() {
  m_thread = std::thread([this] {
    name_this_thread("aops-listen");
    m_server->listen_after_bind();
  });
}

void HttpApi::stop() {
  if (m_server) m_server->stop();
  if (m_thread.joinable()) m_thread.join();
}

}  // namespace asyncops
