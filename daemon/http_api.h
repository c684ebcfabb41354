#pragma once
// HttpApi: the cpp-httplib server in front of the Gateway. It owns the
// listening socket and the connection threads (an ElasticPool), sets
// tcp_nodelay and long keep-alive, and turns every error, including the ones
// httplib makes itself (413, 400 on a bad request line), into problem+json.
#include <memory>
#include <string>
#include <thread>

#include "daemon/gateway.h"
#include "shared/result.h"

namespace httplib {
class Server;
}

namespace asyncops {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port
  size_t max_body_bytes = 1 << 20;
  size_t min_threads = 8;
  size_t max_threads = 4096;
  size_t keep_alive_max_requests = 10000;
  // Both set: HTTPS (httplib::SSLServer) with this PEM certificate and key.
  std::string tls_cert;
  std::string tls_key;
};

class HttpApi {
 public:
  HttpApi(Gateway& gateway, HttpOptions options);
  ~HttpApi();

  // Binds the listening socket; returns the bound port. Fails too when the
  // TLS certificate or key could not be loaded.
  Result<int> bind();
  // Serves on its own thread until stop().
  void start();
  void stop();

 private:
  Gateway& m_gateway;
  HttpOptions m_options;
  std::unique_ptr<httplib::Server> m_server;
  std::thread m_thread;  // runs listen_after_bind()
  int m_listen_fd = -1;   // the listening socket, owned by m_server
};

}  // namespace asyncops
