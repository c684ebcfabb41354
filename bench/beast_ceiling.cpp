// asyncops-bench-beast-ceiling: the second ceiling for the benchmark (issue
// 11). A bare Boost.Beast HTTP/1.1 server on Asio, built as asyncopsd's is:
// one io_context per I/O thread (--threads of them), each new connection
// given to the next one, a strand per connection, every read and write
// async, keep-alive. --one-context runs the one io_context on all the
// threads instead, as asyncopsd did before (and Beast's advanced_server). Every POST is answered with a 202 and a small JSON body
// (about the size of asyncopsd's 202), GET /healthz with 200; nothing else
// is done. It is what a Beast front end could reach on this machine, next to
// the cpp-httplib ceiling (ceiling.cpp), with the same load generator.
//
//   asyncops-bench-beast-ceiling [--host 127.0.0.1] [--port 0] [--threads N]
//                                [--one-context] [--url-file PATH]
// --threads: I/O threads (default: the number of cores).
//
// Writes "http://HOST:PORT\n" to --url-file once it listens; stops on
// SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "args.h"
#include "url_file.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// The body of every 202: the shape and size of asyncopsd's accepted reply.
const std::string k_accepted_body =
    R"({"id":"0192f0c4-6c1e-7b55-8d4a-3f6f0a1b2c3d","state":"pending","name":"create_user",)"
    R"("href":"/operations/0192f0c4-6c1e-7b55-8d4a-3f6f0a1b2c3d"})";

// One keep-alive connection. Owns its socket and buffers; kept alive by the
// shared_ptr captured in each pending handler. Runs on its own strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : m_stream(std::move(socket)) {}
  void start() {
    asio::dispatch(m_stream.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    m_req = {};
    m_stream.expires_after(std::chrono::seconds(30));
    http::async_read(m_stream, m_buffer, m_req,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }
  void on_read(beast::error_code ec) {
    if (ec) return close();
    m_res = {};
    m_res.version(m_req.version());
    m_res.keep_alive(m_req.keep_alive());
    if (m_req.method() == http::verb::post) {
      m_res.result(http::status::accepted);
      m_res.set(http::field::content_type, "application/json");
      m_res.body() = k_accepted_body;
    } else if (m_req.method() == http::verb::get && m_req.target() == "/healthz") {
      m_res.result(http::status::ok);
      m_res.set(http::field::content_type, "application/json");
      m_res.body() = R"({"status":"ok"})";
    } else {
      m_res.result(http::status::not_found);
    }
    m_res.prepare_payload();
    http::async_write(m_stream, m_res, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->m_res.keep_alive()) return self->close();
      self->read();
    });
  }
  void close() {
    beast::error_code ignored;
    m_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream m_stream;
  beast::flat_buffer m_buffer;
  http::request<http::string_body> m_req;
  http::response<http::string_body> m_res;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::vector<asio::io_context*> iocs, tcp::acceptor acceptor)
      : m_iocs(std::move(iocs)), m_acceptor(std::move(acceptor)) {}
  void accept() {
    asio::io_context& ioc = *m_iocs[m_next++ % m_iocs.size()];
    m_acceptor.async_accept(asio::make_strand(ioc), [self = shared_from_this()](beast::error_code ec,
                                                                                   tcp::socket s) {
      if (!ec) {
        s.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(s))->start();
      }
      if (self->m_acceptor.is_open()) self->accept();
    });
  }
  void stop() {
    beast::error_code ignored;
    m_acceptor.close(ignored);
  }

 private:
  std::vector<asio::io_context*> m_iocs;
  size_t m_next = 0;
  tcp::acceptor m_acceptor;
};

void usage() {
  std::cerr << "usage: asyncops-bench-beast-ceiling [--host H] [--port P] [--threads N] [--one-context] "
               "[--url-file PATH]\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", url_file;
  int port = 0;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;
  bool one_context = false;
  FlagReader flags(argc, argv, usage);
  for (std::string a; flags.next(&a);) {
    if (a == "--host") host = flags.value();
    else if (a == "--port") port = std::atoi(flags.value().c_str());
    else if (a == "--threads") threads = std::atoi(flags.value().c_str());
    else if (a == "--url-file") url_file = flags.value();
    else if (a == "--one-context") one_context = true;
    else flags.fail();
  }
  if (threads < 1 || threads > 256) {
    std::cerr << "--threads must be in 1..256\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);

  // One io_context per thread (hint 1: its scheduler never wakes another
  // thread), or with --one-context one for all of them.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (int i = 0; i < (one_context ? 1 : threads); ++i)
    contexts.push_back(std::make_unique<asio::io_context>(one_context ? threads : 1));
  std::vector<asio::io_context*> iocs;
  for (auto& c : contexts) iocs.push_back(c.get());
  asio::io_context& ioc = *iocs[0];
  tcp::acceptor acceptor(ioc);
  beast::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(host, ec), static_cast<unsigned short>(port));
  if (!ec) acceptor.open(ep.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(ep, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "cannot listen on " << host << ":" << port << ": " << ec.message() << "\n";
    return 1;
  }
  int bound = acceptor.local_endpoint().port();
  auto listener = std::make_shared<Listener>(iocs, std::move(acceptor));
  listener->accept();

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) {
    listener->stop();
    for (auto* c : iocs) c->stop();
  });

  std::string url = "http://" + host + ":" + std::to_string(bound);
  if (!url_file.empty()) write_url_file(url_file, url);
  std::cout << "beast ceiling ready: " << url << " (" << threads << " I/O threads, "
            << (one_context ? "one io_context" : "an io_context each") << ")" << std::endl;

  // Work guards: an io_context with no connection yet must not return.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  for (auto* c : iocs) work.push_back(asio::make_work_guard(*c));
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) {
    asio::io_context* c = iocs[one_context ? 0 : i];
    pool.emplace_back([c] { c->run(); });
  }
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
