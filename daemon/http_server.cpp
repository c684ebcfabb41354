// The HTTP/1.1 + WebSocket server (issue 11): Boost.Beast on Asio, after
// Beast's advanced_server example, but with one io_context per I/O thread
// (Asio's "io_context per CPU" design): a connection is given to one of them
// when it is accepted and all its handlers run on that thread. With one
// io_context shared by every I/O thread, a read's or write's completion was
// often handed to another thread through a futex wake-up, tens of
// microseconds on a virtual machine, several times per request. Each
// connection still has a strand. Every read, write and
// wait is asynchronous, and a session owns its buffers and socket through
// shared_from_this. This is the only translation unit that includes Beast.
#include "daemon/http_api.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <deque>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "daemon/ws_channel.h"
#include "shared/log.h"
#include "shared/mutex.h"
#include "shared/timeline.h"

namespace asyncops {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;
using RequestParser = http::request_parser<http::string_body>;

namespace {

constexpr size_t k_ws_max_message = 64 * 1024;  // a subscribe message is tiny
constexpr size_t k_sse_batch = 256;              // events per SSE chunk at most
constexpr int k_ws_send_buffer = 64 * 1024;      // bounds the kernel's share of a slow consumer's backlog

// ---------------------------------------------------------------- parsing

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX-decodes s; plus_is_space for a query component.
std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 &&
        hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

ApiRequest to_api_request(const Request& req, const std::string& remote_addr) {
  ApiRequest r;
  r.method = std::string(req.method_string());
  std::string_view target(req.target().data(), req.target().size());
  r.target_bytes = target.size();
  size_t q = target.find('?');
  r.path = percent_decode(target.substr(0, q), false);
  if (q != std::string_view::npos) {
    std::string_view query = target.substr(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view item = query.substr(0, amp);
      size_t eq = item.find('=');
      std::string key = percent_decode(item.substr(0, eq), true);
      std::string value = eq == std::string_view::npos ? "" : percent_decode(item.substr(eq + 1), true);
      if (!key.empty()) r.query.emplace(std::move(key), std::move(value));  // the first value wins
      if (amp == std::string_view::npos) break;
      query = query.substr(amp + 1);
    }
  }
  for (const auto& f : req) {
    r.headers.emplace(lower(std::string_view(f.name_string().data(), f.name_string().size())),
                      std::string(f.value()));
  }
  r.body = req.body();
  r.remote_addr = remote_addr;
  return r;
}

ApiReply bad_request(const std::string& detail, const std::string& code = "bad_request") {
  return problem_reply(400, detail, code);
}

// The problem for a parse error, or nullopt when the connection just ends
// (the peer closed, or a deadline passed: nobody to answer).
std::optional<ApiReply> parse_error_reply(const beast::error_code& ec, const RequestParser& parser,
                                          std::string_view unparsed, const HttpLimits& limits) {
  if (ec == http::error::header_limit) {
    // The request line alone too long is 414; otherwise the fields are.
    // (Once Beast has parsed the request line, unparsed holds the fields.)
    size_t target = parser.get().target().size();
    size_t eol = unparsed.find("\r\n");
    bool line_too_long = target > 0 ? target > limits.max_url_bytes
                                    : eol == std::string_view::npos || eol > limits.max_url_bytes + 16;
    if (line_too_long) {
      return uri_too_long(limits.max_url_bytes);
    }
    return headers_too_large(limits.max_header_bytes);
  }
  if (ec == http::error::body_limit) {
    return body_too_large(limits.max_body_bytes);
  }
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length) {
    return bad_request("Content-Length must be one decimal number (digits only, given once)",
                       "invalid_content_length");
  }
  if (ec == http::error::bad_transfer_encoding) {
    return bad_request("Transfer-Encoding must be chunked, given once, and never with Content-Length",
                       "invalid_transfer_encoding");
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_more) {
    return bad_request("the request is not valid HTTP/1.1: " + ec.message());
  }
  return std::nullopt;
}

bool all_digits(std::string_view v) {
  if (v.empty() || v.size() > 18) return false;
  return std::all_of(v.begin(), v.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

// RFC 9112's framing rules that Beast is lenient about: a problem to send
// (and close), or nullopt.
std::optional<ApiReply> check_head(const Request& req) {
  auto cl = req.equal_range(http::field::content_length);
  size_t cl_count = static_cast<size_t>(std::distance(cl.first, cl.second));
  if (cl_count > 1) {
    return bad_request("Content-Length is given more than once", "invalid_content_length");
  }
  if (cl_count == 1 && !all_digits(std::string_view(cl.first->value().data(), cl.first->value().size()))) {
    return bad_request("Content-Length must be one decimal number (digits only)", "invalid_content_length");
  }
  auto te = req.equal_range(http::field::transfer_encoding);
  size_t te_count = static_cast<size_t>(std::distance(te.first, te.second));
  if (te_count > 0) {
    std::string v = lower(std::string_view(te.first->value().data(), te.first->value().size()));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    bool chunked_last = v.size() >= 7 && v.compare(v.size() - 7, 7, "chunked") == 0;
    if (te_count > 1 || cl_count > 0 || !chunked_last || req.version() < 11) {
      return bad_request("Transfer-Encoding must be chunked, given once, and never with Content-Length",
                         "invalid_transfer_encoding");
    }
  }
  auto host = req.equal_range(http::field::host);
  size_t host_count = static_cast<size_t>(std::distance(host.first, host.second));
  if ((req.version() >= 11 && host_count == 0) || host_count > 1) {
    return bad_request("an HTTP/1.1 request has exactly one Host header", "invalid_host");
  }
  return std::nullopt;
}

void configure_parser(RequestParser& p, const HttpLimits& limits) {
  // The head may hold the target and the fields at their limits, each
  // checked on its own (414 and 431) once the head is parsed.
  p.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes + limits.max_url_bytes + 1024));
  p.body_limit(limits.max_body_bytes);
}

bool wants_continue(const Request& req) {
  auto it = req.find(http::field::expect);
  return it != req.end() && beast::iequals(it->value(), "100-continue");
}

// ---------------------------------------------------------------- replies

bool has_body(int status) { return status >= 200 && status != 204 && status != 304; }

std::shared_ptr<http::response<http::string_body>> make_response(ApiReply&& reply, bool head, bool keep_alive) {
  auto res = std::make_shared<http::response<http::string_body>>();
  res->version(11);
  res->result(static_cast<unsigned>(reply.status));
  for (const auto& [k, v] : reply.headers) res->insert(k, v);
  res->set(http::field::cache_control, "no-store");
  if (has_body(reply.status)) {
    if (!reply.content_type.empty()) res->set(http::field::content_type, reply.content_type);
    if (!head) res->body() = std::move(reply.body);
    res->prepare_payload();
    if (head) res->content_length(reply.body.size());
  }
  res->keep_alive(keep_alive);
  return res;
}

// Two memchr scans: find_first_of("\r\n") calls memchr once per character
// of s, which made these checks half of render_http_response's work.
bool has_crlf(std::string_view s) {
  return s.find('\r') != std::string_view::npos || s.find('\n') != std::string_view::npos;
}

std::string_view trim_ows(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// The Connection header of an HTTP/1.1 reply, as Beast's keep_alive()
// makes it from the reply's own: its tokens without "keep-alive", and
// without "close" when the connection stays open, with "close" added when
// it does not. Empty: no header.
std::string connection_value(std::string_view value, bool keep_alive) {
  std::string out;
  bool had_close = false;
  for (auto token : http::token_list{beast::string_view(value.data(), value.size())}) {
    if (beast::iequals(token, "keep-alive")) continue;
    if (beast::iequals(token, "close")) {
      had_close = true;
      if (keep_alive) continue;
    }
    if (!out.empty()) out.append(", ");
    out.append(token.data(), token.size());
  }
  if (!keep_alive && !had_close) out.append(out.empty() ? "close" : ", close");
  return out;
}

std::string remote_address(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";  // never loopback: an unknown peer is not trusted
  auto a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return a.to_v6().to_v4().to_string();
  return a.to_string();
}

std::string chunk(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

template <class Stream>
struct is_tls : std::false_type {};
template <>
struct is_tls<beast::ssl_stream<beast::tcp_stream>> : std::true_type {};

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

}  // namespace

// -------------------------------------------------------------- stream wake-ups

// The wake-ups of the streams (SSE, /ws, the SignalR hub) waiting for their
// thread: at most max_in_flight of them in the io_contexts' queues at once,
// the rest here, in order. Most streams run on the stream threads; those
// that stay on the I/O threads (over HTTPS, or with --stream-threads 0)
// would otherwise fill the I/O queue in a burst of changes, and a request's
// read or an accept's 202 would wait behind every one of them (bench/sse
// phase C: a 202 written 86-152 ms after its commit). Each stream has at
// most one wake-up pending (its wake_posted flag), so the queue here is
// bounded by the streams.
class StreamWakeGate {
 public:
  explicit StreamWakeGate(size_t max_in_flight) : m_max(max_in_flight) {}
  // Thread-safe. Runs post (which posts the wake-up to the stream's strand)
  // now when fewer than the maximum are in flight, else when one is done.
  // The posted handler must call done() exactly once when it runs.
  void submit(std::function<void()> post) {
    {
      MutexLock lock(&m_mutex);
      if (m_closed) return;  // the I/O threads are gone: post is dropped
      if (m_in_flight >= m_max) {
        m_waiting.push_back(std::move(post));
        return;
      }
      ++m_in_flight;
    }
    post();
  }
  // Thread-safe: a wake-up posted through submit() ran.
  void done() {
    std::function<void()> next;
    {
      MutexLock lock(&m_mutex);
      if (m_waiting.empty()) {
        --m_in_flight;
        return;
      }
      next = std::move(m_waiting.front());
      m_waiting.pop_front();
    }
    next();  // its slot passes on
  }
  // Once the I/O threads are joined and the io_context is still alive:
  // drops what waits (each holds a strand's executor, which must not
  // outlive its io_context) and every later submit().
  void close() {
    std::deque<std::function<void()>> dropped;
    MutexLock lock(&m_mutex);
    m_closed = true;
    dropped.swap(m_waiting);
  }
  // The number kept in flight: a few per I/O thread keep them all busy,
  // and a request waits behind at most this many stream handlers.
  static constexpr size_t k_max_in_flight = 64;

 private:
  const size_t m_max;
  Mutex m_mutex;
  size_t m_in_flight GUARDED_BY(m_mutex) = 0;
  std::deque<std::function<void()>> m_waiting GUARDED_BY(m_mutex);
  bool m_closed GUARDED_BY(m_mutex) = false;
};

// Posts on_wake to a stream's strand through the gate; the handler gives
// its slot back whether or not the stream still exists.
template <class Session, class Executor>
void post_stream_wake(StreamWakeGate& gate, Executor executor, std::weak_ptr<Session> weak,
                      void (Session::*on_wake)()) {
  gate.submit([&gate, executor, weak, on_wake] {
    asio::post(executor, [&gate, weak, on_wake] {
      struct GiveBack {
        StreamWakeGate& g;
        ~GiveBack() { g.done(); }
      } give_back{gate};
      if (auto self = weak.lock()) ((*self).*on_wake)();
    });
  });
}

// -------------------------------------------------------------- registry

// A connection as the registry sees it: whether it may be closed to make
// room (idle: between requests or with its head incomplete), and how.
class Connection {
 public:
  virtual ~Connection() = default;
  // Thread-safe: closes the connection on its own strand.
  virtual void evict() = 0;
  std::atomic<bool> idle{true};
};

// Counts one connection on the I/O thread that serves it, while it lives
// there: an accepting thread gives a new connection to itself unless
// another I/O thread has clearly fewer (HttpApi::Impl::pick_ioc).
class IocLoad {
 public:
  IocLoad() = default;
  explicit IocLoad(std::atomic<int>* count) : m_count(count) { m_count->fetch_add(1, std::memory_order_relaxed); }
  IocLoad(IocLoad&& o) noexcept : m_count(std::exchange(o.m_count, nullptr)) {}
  IocLoad& operator=(IocLoad&&) = delete;
  ~IocLoad() {
    if (m_count) m_count->fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::atomic<int>* m_count = nullptr;
};

class HttpApi::Impl {
 public:
  Impl(Gateway& gateway, HttpOptions options);

  Result<int> bind();
  void start();
  void stop();

  // Registers a connection; false when it must be refused (the limit is
  // reached and no idle connection could be closed to make room).
  bool admit(uint64_t* id);
  void enroll(uint64_t id, std::weak_ptr<Connection> c);
  // Moves a connection that is becoming a stream onto the next stream
  // thread (see stream_iocs): its socket is released from this I/O thread's
  // reactor and assigned to a strand of a stream io_context. Call it on the
  // connection's strand with no operation pending on the socket. Returns
  // the moved stream; nullopt when there are no stream threads (the
  // connection stays where it is) or when the move failed (then `from` is
  // closed: the caller ends the connection).
  std::optional<beast::tcp_stream> to_stream_thread(beast::tcp_stream& from);
  void remove(uint64_t id);
  size_t connections() const {
    MutexLock lock(&m_conn_mutex);
    return m_conns.size();
  }

  Gateway& gateway;
  const HttpOptions options;
  std::optional<ssl::context> tls;  // set: every connection is HTTPS
  std::atomic<bool> stopping{false};
  StreamWakeGate stream_wakes{StreamWakeGate::k_max_in_flight};  // before ioc: its handlers use it

 private:
  // The listening socket, once per I/O thread (a dup of one descriptor,
  // in each thread's own reactor): every I/O thread accepts. A new client
  // is taken by whichever thread gets to its reactor first, which is the
  // one with the least queued, and not behind one thread's backlog of
  // handlers (bench/slowloris.sh: 10,000 slow connections timing out and
  // reconnecting at once).
  struct Acceptor {
    Acceptor(asio::io_context& ioc, size_t index) : acceptor(ioc), retry(ioc), index(index) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;
    const size_t index;  // of its I/O thread in iocs
  };
  void accept_next(Acceptor& a);
  void on_accept(Acceptor& a, beast::error_code ec, tcp::socket socket, size_t target);
  void start_session(tcp::socket socket, size_t target);
  // Where a connection accepted on I/O thread `local` is served: there,
  // with no hand-off, unless another I/O thread has clearly fewer
  // connections (one client opening its keep-alive pool at once must not
  // land on one thread).
  size_t pick_ioc(size_t local) const;
  // Most connections taken from the listen queue in one go, after an
  // accept completes, before the other handlers get a turn again. Larger
  // bursts make one long handler, and give their connections deadlines
  // that expire together (bench/slowloris.sh, p99 under attack: median
  // 18.9 ms in 5 runs with 64, 32.7 ms in 9 runs with 256).
  static constexpr size_t k_accept_burst = 64;

  mutable Mutex m_conn_mutex;
  std::map<uint64_t, std::weak_ptr<Connection>> m_conns GUARDED_BY(m_conn_mutex);  // by age
  uint64_t m_next_id GUARDED_BY(m_conn_mutex) = 1;
  // Connections per I/O thread (IocLoad); before iocs: the sessions that
  // count themselves here die with them.
  std::unique_ptr<std::atomic<int>[]> m_ioc_load;

 public:
  // One per I/O thread; after everything the sessions use: their handlers
  // (and sessions) die first. The listening socket is on the first.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  // One per stream thread (aops-stream): the SSE, /ws and SignalR
  // connections over plain TCP move here once they become streams, so that
  // the writes of a burst of changes to thousands of streams never queue
  // ahead of a request or an accept's 202 on the I/O threads (bench/sse
  // phase C). TLS connections stay where they are: an SSL stream cannot
  // change its executor.
  std::vector<std::unique_ptr<asio::io_context>> stream_iocs;

 private:
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> m_work;
  std::vector<std::thread> m_threads;
  std::vector<std::unique_ptr<Acceptor>> m_acceptors;  // one per I/O thread, after iocs
  std::atomic<size_t> m_next_stream_ioc{0};  // taken by any I/O thread
  static std::vector<std::unique_ptr<asio::io_context>> make_iocs(size_t threads);
};

bool HttpApi::Impl::admit(uint64_t* id) {
  std::shared_ptr<Connection> victim;
  {
    MutexLock lock(&m_conn_mutex);
    if (m_conns.size() >= options.max_connections) {
      // The oldest idle connection makes room; slow and idle clients can
      // never keep a new one out.
      for (auto it = m_conns.begin(); it != m_conns.end(); ++it) {
        auto c = it->second.lock();
        if (!c || c->idle.load()) {
          victim = std::move(c);
          m_conns.erase(it);
          break;
        }
      }
      if (m_conns.size() >= options.max_connections) return false;
    }
    *id = m_next_id++;
    m_conns.emplace(*id, std::weak_ptr<Connection>());
  }
  if (victim) victim->evict();  // outside the lock: evict() may drop the last reference
  return true;
}

void HttpApi::Impl::enroll(uint64_t id, std::weak_ptr<Connection> c) {
  MutexLock lock(&m_conn_mutex);
  auto it = m_conns.find(id);
  if (it != m_conns.end()) it->second = std::move(c);
}

std::optional<beast::tcp_stream> HttpApi::Impl::to_stream_thread(beast::tcp_stream& from) {
  if (stream_iocs.empty()) return std::nullopt;
  tcp::socket& socket = from.socket();
  beast::error_code ec;
  auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) {
    socket.close(ec);
    return std::nullopt;
  }
  tcp::socket::native_handle_type fd = socket.release(ec);
  if (ec) {
    socket.close(ec);
    return std::nullopt;
  }
  asio::io_context& ioc = *stream_iocs[m_next_stream_ioc++ % stream_iocs.size()];
  tcp::socket moved(asio::make_strand(ioc));
  moved.assign(protocol, fd, ec);
  if (ec) {
    log_warn("a stream could not move to a stream thread; it is closed", {{"error", ec.message()}});
    ::close(fd);
    return std::nullopt;
  }
  return beast::tcp_stream(std::move(moved));
}

void HttpApi::Impl::remove(uint64_t id) {
  MutexLock lock(&m_conn_mutex);
  m_conns.erase(id);
}

// ------------------------------------------------------------- websocket

template <class Stream>
class WsSession : public Connection, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(HttpApi::Impl& server, Stream&& stream, uint64_t id)
      : m_server(server), m_ws(std::move(stream)), m_id(id), m_teardown(m_ws.get_executor()) {
    idle = false;
  }
  ~WsSession() override { m_server.remove(m_id); }

  void run(Request req, WebSocketGrant grant) {
    m_server.enroll(m_id, this->weak_from_this());
    auto& tcp_layer = beast::get_lowest_layer(m_ws);
    tcp_layer.expires_never();  // the websocket's own timeouts take over
    beast::error_code ignored;
    tcp_layer.socket().set_option(asio::socket_base::send_buffer_size(k_ws_send_buffer), ignored);
    websocket::stream_base::timeout t;
    t.handshake_timeout = m_server.options.header_timeout;
    // Beast pings after half the idle timeout without traffic, and closes
    // the connection when a whole idle timeout passes without a reply.
    t.idle_timeout = m_server.options.ws_ping_interval * 2;
    t.keep_alive_pings = true;
    m_ws.set_option(t);
    m_ws.read_message_max(k_ws_max_message);
    m_ws.text(true);
    m_grant = std::move(grant);
    m_ws.async_accept(req, [self = this->shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
  }

  void evict() override {
    asio::post(m_ws.get_executor(), [self = this->shared_from_this()] { self->teardown(); });
  }
  auto executor() { return m_ws.get_executor(); }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    auto wake_posted = m_wake_posted;
    auto executor = m_ws.get_executor();
    std::weak_ptr<WsSession> weak = this->shared_from_this();
    StreamWakeGate& gate = m_server.stream_wakes;
    // Runs on the commit thread: it only posts, at most once until run.
    auto wake = [wake_posted, executor, weak, &gate] {
      if (wake_posted->exchange(true)) return;
      post_stream_wake(gate, executor, weak, &WsSession::on_wake);
    };
    if (m_grant.channel) {
      m_channel = m_grant.channel(wake);  // the SignalR hub
    } else {
      m_channel = std::make_unique<WsChannel>(m_server.gateway.hub(), m_server.gateway.readers(), m_grant, wake);
    }
    read_next();
  }

  void read_next() {
    m_ws.async_read(m_in, [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      finish();
      return;
    }
    std::string text = beast::buffers_to_string(m_in.data());
    m_in.consume(m_in.size());
    std::vector<std::string> out;
    if (!m_ws.got_text()) {
      out.push_back(
          ws_error_frame(make_problem(400, "messages are JSON text frames", "invalid_message")));
    } else if (m_channel && !m_closing) {
      m_channel->on_message(text, &out);
    }
    for (auto& f : out) m_queue.push_back(std::move(f));
    if (m_channel && m_channel->finished()) return close_with(websocket::close_code::normal, "");
    write_next();
    read_next();
  }

  void on_wake() {
    m_wake_posted->store(false);
    pump(true);
  }

  // Moves due frames from the channel to the queue. A live wake that finds
  // the queue full is an overflow: the client is too slow, and is closed so
  // that it resumes from its last seq. Otherwise (after a write) the queue
  // is only filled up, which paces replays to the client's speed.
  void pump(bool live) {
    if (!m_channel || m_closing) return;
    if (m_server.gateway.hub().is_shut_down()) {
      close_with(websocket::close_code::going_away, "the server is stopping");
      return;
    }
    size_t max = m_server.options.ws_max_queue;
    size_t room = max > m_queue.size() ? max - m_queue.size() : 0;
    if (room == 0 && !live) return;
    std::vector<std::string> frames;
    bool more = m_channel->poll(&frames, room + (live ? 1 : 0));
    for (auto& f : frames) m_queue.push_back(std::move(f));
    if (m_queue.size() > max) {
      close_with(static_cast<websocket::close_code>(k_ws_close_slow_consumer),
                 "slow consumer: reconnect and resume with last_event_id");
      return;
    }
    if (m_channel->finished()) return close_with(websocket::close_code::normal, "");
    if (more && m_queue.size() < max && !m_repump_posted) {
      m_repump_posted = true;
      asio::post(m_ws.get_executor(), [self = this->shared_from_this()] {
        self->m_repump_posted = false;
        self->pump(false);
      });
    }
    write_next();
  }

  void write_next() {
    if (m_writing) return;
    if (m_queue.empty()) {
      if (m_closing && !m_close_sent) send_close();
      return;
    }
    m_writing = true;
    m_ws.async_write(asio::buffer(m_queue.front()),
                     [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    m_writing = false;
    if (ec) {
      finish();
      return;
    }
    m_queue.pop_front();
    pump(false);
    write_next();
  }

  void close_with(websocket::close_code code, const char* reason) {
    if (m_closing) return;
    m_closing = true;
    m_reason = websocket::close_reason(code, reason);
    m_channel.reset();  // no more frames; the subscriptions end
    // Frames not yet on the wire are dropped: the client resumes from the
    // last seq it received. (A normal close, when the channel's protocol is
    // over, sends them: the last is what closed it.)
    if (code != websocket::close_code::normal) {
      while (m_queue.size() > (m_writing ? 1u : 0u)) m_queue.pop_back();
    }
    // A client that reads nothing never takes the close frame either.
    m_teardown.expires_after(m_server.options.write_timeout);
    m_teardown.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->teardown();
    });
    write_next();
  }

  void send_close() {
    m_close_sent = true;
    m_ws.async_close(m_reason, [self = this->shared_from_this()](beast::error_code) {});
  }

  void teardown() {
    m_channel.reset();
    m_teardown.cancel();
    beast::get_lowest_layer(m_ws).close();
  }

  void finish() {
    m_channel.reset();
    m_teardown.cancel();
  }

  HttpApi::Impl& m_server;
  websocket::stream<Stream> m_ws;
  uint64_t m_id;
  asio::steady_timer m_teardown;
  beast::flat_buffer m_in;
  WebSocketGrant m_grant;
  std::unique_ptr<PushChannel> m_channel;
  std::deque<std::string> m_queue;  // frames to send; the front is on the wire while m_writing
  bool m_writing = false;
  bool m_closing = false;
  bool m_close_sent = false;
  bool m_repump_posted = false;
  websocket::close_reason m_reason;
  std::shared_ptr<std::atomic<bool>> m_wake_posted = std::make_shared<std::atomic<bool>>(false);
};

// ------------------------------------------------------- push over SSE

// A PushChannel's messages as Server-Sent Events, one `data:` line each;
// the client's messages come in other requests (the SignalR hub's SSE
// transport POSTs them). It takes the connection over from HttpSession,
// as a WsSession does.
template <class Stream>
class PushSseSession : public Connection, public std::enable_shared_from_this<PushSseSession<Stream>> {
 public:
  PushSseSession(HttpApi::Impl& server, Stream&& stream, uint64_t id)
      : m_server(server), m_stream(std::move(stream)), m_id(id), m_write_timer(m_stream.get_executor()) {
    idle = false;
  }
  ~PushSseSession() override { m_server.remove(m_id); }

  void run(ApiReply reply) {
    m_server.enroll(m_id, this->weak_from_this());
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                       "Transfer-Encoding: chunked\r\n";
    for (const auto& [k, v] : reply.headers) head += k + ": " + v + "\r\n";
    m_pending = head + "\r\n";
    auto wake_posted = m_wake_posted;
    auto executor = m_stream.get_executor();
    std::weak_ptr<PushSseSession> weak = this->shared_from_this();
    StreamWakeGate& gate = m_server.stream_wakes;
    m_channel = reply.push_sse([wake_posted, executor, weak, &gate] {
      if (wake_posted->exchange(true)) return;
      post_stream_wake(gate, executor, weak, &PushSseSession::on_wake);
    });
    // The client sends nothing more here; a read notices when it goes away.
    m_stream.async_read_some(m_scratch.prepare(512), [self = this->shared_from_this()](beast::error_code, size_t) {
      self->close_now();
    });
    pump();
  }

  void evict() override {
    asio::post(m_stream.get_executor(), [self = this->shared_from_this()] { self->close_now(); });
  }
  auto executor() { return m_stream.get_executor(); }

 private:
  void on_wake() {
    m_wake_posted->store(false);
    pump();
  }

  void pump() {
    if (!m_channel || m_writing) return;
    std::string data;
    std::vector<std::string> messages;
    for (bool more = true; more && data.empty();) {
      messages.clear();
      more = m_channel->poll(&messages, k_sse_batch);
      for (const auto& m : messages) data += "data: " + m + "\n\n";
    }
    if (!data.empty()) m_pending += chunk(data);
    if (m_channel->finished() || m_server.gateway.hub().is_shut_down()) {
      m_pending += "0\r\n\r\n";
      m_channel.reset();
      m_last_chunk = true;
    }
    if (!m_pending.empty()) write();
  }

  void write() {
    m_writing = true;
    m_out = std::move(m_pending);
    m_pending.clear();
    // A client that takes nothing for this long is gone or stuck.
    m_write_timer.expires_after(m_server.options.write_timeout);
    m_write_timer.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec) self->close_now();
    });
    asio::async_write(m_stream, asio::buffer(m_out), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->m_writing = false;
      self->m_write_timer.cancel();
      if (ec || self->m_last_chunk) return self->close_now();
      if (!self->m_pending.empty()) return self->write();
      self->pump();  // a wake-up during the write found m_writing set
    });
  }

  void close_now() {
    m_channel.reset();
    m_write_timer.cancel();
    beast::get_lowest_layer(m_stream).close();
  }

  HttpApi::Impl& m_server;
  Stream m_stream;
  uint64_t m_id;
  asio::steady_timer m_write_timer;
  beast::flat_buffer m_scratch;
  std::unique_ptr<PushChannel> m_channel;
  std::string m_pending;  // bytes due after the write in flight
  std::string m_out;      // the write in flight
  bool m_writing = false;
  bool m_last_chunk = false;
  std::shared_ptr<std::atomic<bool>> m_wake_posted = std::make_shared<std::atomic<bool>>(false);
};

// ------------------------------------------------------------------ http

template <class Stream>
class HttpSession : public Connection, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  HttpSession(HttpApi::Impl& server, Stream&& stream, uint64_t id, IocLoad load = {})
      : m_server(server), m_stream(std::move(stream)), m_id(id), m_timer(m_stream.get_executor()), m_load(std::move(load)) {}
  ~HttpSession() override {
    if (!m_upgraded) m_server.remove(m_id);
  }

  void run() {
    m_server.enroll(m_id, this->weak_from_this());
    m_remote = remote_address(beast::get_lowest_layer(m_stream).socket());
    if constexpr (is_tls<Stream>::value) {
      beast::get_lowest_layer(m_stream).expires_after(m_server.options.header_timeout);
      m_stream.async_handshake(ssl::stream_base::server,
                               [self = this->shared_from_this()](beast::error_code ec) {
                                 if (ec) return;
                                 self->read_request();
                               });
    } else {
      asio::dispatch(m_stream.get_executor(), [self = this->shared_from_this()] { self->read_request(); });
    }
  }

  void evict() override {
    asio::post(m_stream.get_executor(), [self = this->shared_from_this()] { self->close_now(); });
  }
  auto executor() { return m_stream.get_executor(); }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(m_stream); }

  // ---- reading a request
  void read_request() {
    if (m_server.stopping) return close_now();
    m_parser.emplace();
    configure_parser(*m_parser, m_server.options.limits);
    idle = true;
    if (m_buffer.size() > 0) return read_head();
    // Between requests: the idle timeout, until the first byte.
    tcp_layer().expires_after(m_server.options.idle_timeout);
    m_stream.async_read_some(m_buffer.prepare(4096),
                             [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                               if (ec) return self->close_now();
                               self->m_buffer.commit(n);
                               self->read_head();
                             });
  }

  void read_head() {
    // One deadline for the whole head, however slowly it trickles in.
    tcp_layer().expires_after(m_server.options.header_timeout);
    if (parse_buffered()) return;
    http::async_read_header(m_stream, m_buffer, *m_parser,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) { self->on_head(ec); });
  }

  void on_head(beast::error_code ec) {
    idle = false;
    if (ec) return on_parse_error(ec);
    if (auto bad = check_head(m_parser->get())) return send(std::move(*bad), false);
    if (m_parser->is_done()) return on_request();
    if (wants_continue(m_parser->get())) {
      // The client waits for this before it sends the body (curl does for
      // bodies over 1 KiB).
      m_continue = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
      tcp_layer().expires_after(m_server.options.write_timeout);
      http::async_write(m_stream, *m_continue,
                        [self = this->shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->close_now();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    // A deadline for each step of the body: progress, not the whole.
    tcp_layer().expires_after(m_server.options.body_timeout);
    if (parse_buffered()) return;
    http::async_read_some(m_stream, m_buffer, *m_parser,
                          [self = this->shared_from_this()](beast::error_code ec, size_t) {
                            if (ec) return self->on_parse_error(ec);
                            if (self->m_parser->is_done()) return self->on_request();
                            self->read_body();
                          });
  }

  // Parses what is already read, here: the head once it is all in the
  // buffer, then as much of the body as is. Beast's async reads would do
  // the same, but hand a parse that needed no read back through the I/O
  // thread's queue (a post), once for the head and once for the body: two
  // more trips behind whatever is queued for each request (bench/slowloris.sh:
  // a new client's POST behind a storm of timeouts and reconnects). True
  // when it went on to the next step (on_head, on_request or an error);
  // false when more bytes are needed, and the async read goes on from the
  // parser's state.
  bool parse_buffered() {
    bool had_head = m_parser->is_header_done();
    while (m_buffer.size() > 0 && !m_parser->is_done()) {
      beast::error_code ec;
      size_t used = m_parser->put(m_buffer.data(), ec);
      m_buffer.consume(used);
      if (ec == http::error::need_more) break;
      if (ec) {
        if (had_head) {
          on_parse_error(ec);
        } else {
          on_head(ec);
        }
        return true;
      }
      if (!had_head && m_parser->is_header_done()) {
        on_head({});  // judged before any body is read
        return true;
      }
      if (used == 0) break;
    }
    if (!had_head || !m_parser->is_done()) return false;
    on_request();
    return true;
  }

  void on_parse_error(beast::error_code ec) {
    auto data = m_buffer.data();
    std::string_view unparsed(static_cast<const char*>(data.data()), data.size());
    auto reply = parse_error_reply(ec, *m_parser, unparsed, m_server.options.limits);
    if (!reply) return close_now();
    send(std::move(*reply), false);
  }

  // ---- answering
  void on_request() {
    tcp_layer().expires_never();
    ++m_served;
    const Request& req = m_parser->get();
    m_head = req.method() == http::verb::head;
    m_keep_alive = req.keep_alive() && m_served < m_server.options.keep_alive_max_requests;
    long long read_us = timeline_now_us();
    ApiRequest api = to_api_request(req, m_remote);
    api.timeline_us = read_us;
    api.connected_us = m_connected_us;
    answer(m_server.gateway.begin(std::move(api)));
  }

  void answer(ApiReply reply) {
    if (reply.later) {
      // Written from the commit's completion: deliver runs on the commit
      // thread (or right here) and only posts the builder to this strand.
      auto later = std::move(reply.later);
      auto executor = m_stream.get_executor();
      later([self = this->shared_from_this(), executor](Finish finish) mutable {
        asio::post(executor, [self = std::move(self), finish = std::move(finish)] {
          if (self->m_closed) return;
          self->answer(finish());
        });
      });
      return;
    }
    if (reply.wait) return start_wait(std::move(reply.wait));
    if (reply.stream) return start_sse(std::move(reply));
    if (reply.push_sse) return start_push_sse(std::move(reply));
    if (reply.websocket) {
      if (!websocket::is_upgrade(m_parser->get())) {
        return send(bad_request("a WebSocket handshake needs Connection: Upgrade", "upgrade_required"), false);
      }
      return start_websocket(std::move(*reply.websocket));
    }
    send(std::move(reply), m_keep_alive);
  }

  void send(ApiReply reply, bool keep_alive) {
    m_keep_alive = keep_alive && !m_server.stopping;
    // bench/latency_breakdown.sh: when an operation's answer left.
    std::string timeline_id;
    if (timeline_on()) {
      for (const auto& [name, value] : reply.headers) {
        if (name == "X-Operation" && value.rfind("/operations/", 0) == 0) timeline_id = value.substr(12);
      }
    }
    // One buffer, rendered here: Beast's fields and serializer cost about a
    // seventh of an I/O thread's instructions per accept (bench/instructions.sh).
    m_out = render_http_response(reply, m_head, m_keep_alive);
    tcp_layer().expires_after(m_server.options.write_timeout);
    asio::async_write(m_stream, asio::buffer(m_out), [self = this->shared_from_this(), timeline_id](beast::error_code ec, size_t) {
      if (!timeline_id.empty()) timeline_mark("response_written", timeline_id);
      std::string().swap(self->m_out);  // an idle connection keeps no reply buffer
      if (ec || !self->m_keep_alive) return self->shutdown();
      self->read_request();
    });
  }

  // ---- ?wait and Prefer: wait
  void start_wait(std::shared_ptr<ApiWait> wait) {
    m_wait = std::move(wait);
    auto executor = m_stream.get_executor();
    std::weak_ptr<HttpSession> weak = this->shared_from_this();
    bool keep_document = static_cast<bool>(m_wait->finish_ended);
    std::weak_ptr<ApiWait> which = m_wait;
    // Subscribe first, then read: a change in between still wakes us. Only
    // the change that ends the operation (or the hub's shutdown) matters,
    // and it comes once (a late outcome's second one finds no wait).
    auto on_change = [executor, weak, which, keep_document](const Change* c) {
      if (c && !is_terminal(c->op.state)) return;
      std::optional<OperationRecord> ended;
      if (c && keep_document) ended = c->op;
      asio::post(executor, [weak, which, ended = std::move(ended)]() mutable {
        if (auto self = weak.lock()) self->on_wait_end(which, std::move(ended));
      });
    };
    // A wait that knows the operation at a seq (an accept's Prefer: wait)
    // needs no read when the hub has published nothing for it since: every
    // later change reaches the subscription. Without a seq it always reads.
    bool unchanged = false;
    m_wait_sub = m_server.gateway.hub().subscribe_changes(m_wait->op_id, m_wait->since, &unchanged, on_change);
    if ((!unchanged && m_wait->ready()) || m_server.gateway.hub().is_shut_down()) return end_wait();
    m_timer.expires_at(m_wait->deadline);
    m_timer.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (!ec && self->m_wait) self->end_wait();
    });
  }

  // The operation of wait `which` ended (ended: its document, when the wait
  // answers from it), or the hub shut down. A wait already answered (by
  // ready() or its deadline) is not this connection's current one.
  void on_wait_end(const std::weak_ptr<ApiWait>& which, std::optional<OperationRecord> ended) {
    if (!m_wait || m_wait != which.lock()) return;
    if (!ended) return end_wait();
    m_timer.cancel();
    m_wait_sub.reset();
    auto wait = std::move(m_wait);
    m_wait.reset();
    answer(wait->finish_ended(*ended));
  }

  void end_wait() {
    m_timer.cancel();
    m_wait_sub.reset();
    auto wait = std::move(m_wait);
    m_wait.reset();
    answer(wait->finish());
  }

  // ---- Server-Sent Events
  void start_sse(ApiReply reply) {
    if (auto session = hand_to_stream_thread<HttpSession>()) {
      session->m_remote = m_remote;
      asio::post(session->executor(), [session, reply = std::move(reply)]() mutable {
        session->serve_sse(std::move(reply));
      });
      return;
    }
    serve_sse(std::move(reply));
  }

  void serve_sse(ApiReply reply) {
    const StreamOptions& so = m_server.gateway.stream_options();
    std::string head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                       "Transfer-Encoding: chunked\r\n";
    for (const auto& [k, v] : reply.headers) head += k + ": " + v + "\r\n";
    head += "\r\n";
    auto wake_posted = m_wake_posted;
    auto executor = m_stream.get_executor();
    std::weak_ptr<HttpSession> weak = this->shared_from_this();
    StreamWakeGate& gate = m_server.stream_wakes;
    m_feed = std::make_unique<ChangeFeed>(m_server.gateway.hub(), m_server.gateway.readers(), *reply.stream,
                                          [wake_posted, executor, weak, &gate] {
                                            if (wake_posted->exchange(true)) return;
                                            post_stream_wake(gate, executor, weak, &HttpSession::on_sse_wake);
                                          });
    m_sse_cloudevents = reply.stream->cloudevents;
    m_sse_pending = head + chunk("retry: " + std::to_string(so.retry_ms) + "\n\n");
    // The client sends nothing more; a read notices when it goes away.
    // (Anything it does send, or its going away, ends the stream.)
    m_sse_started = true;
    m_stream.async_read_some(m_scratch.prepare(512), [self = this->shared_from_this()](beast::error_code, size_t) {
      self->close_now();
    });
    arm_heartbeat();
    sse_pump();
  }

  void on_sse_wake() {
    m_wake_posted->store(false);
    sse_pump();
  }

  void sse_pump() {
    if (!m_feed || m_sse_writing) return;
    std::vector<FeedItem> items;
    std::string data;
    // A poll may hand out nothing yet say more is due (its batch was all
    // filtered out): poll on until something is due to be written or not.
    for (bool more = true; more && data.empty() && !m_feed->ended();) {
      items.clear();
      more = m_feed->poll(&items, k_sse_batch);
      for (const FeedItem& i : items) data += format_sse_event(i, m_sse_cloudevents);
    }
    if (!data.empty()) m_sse_pending += chunk(data);
    bool ended = m_feed->ended();
    if (ended) {
      m_sse_pending += "0\r\n\r\n";
      m_feed.reset();
      m_sse_last_chunk = true;
    }
    if (m_sse_pending.empty()) return;
    sse_write();
  }

  void sse_write() {
    m_sse_writing = true;
    m_sse_sent_since_beat = true;
    m_sse_write_started = Clock::now();
    m_sse_out = std::move(m_sse_pending);
    m_sse_pending.clear();
    asio::async_write(m_stream, asio::buffer(m_sse_out), [self = this->shared_from_this()](beast::error_code ec, size_t) {
      self->m_sse_writing = false;
      if (ec) return self->close_now();
      if (self->m_sse_last_chunk) return self->shutdown();
      if (!self->m_sse_pending.empty()) return self->sse_write();
      // Always poll again: a wake-up that came while this write was under
      // way found m_sse_writing set and did nothing (sse_pump), so it is
      // answered here; polling with nothing due costs little.
      self->sse_pump();
    });
  }

  void arm_heartbeat() {
    m_timer.expires_after(m_server.gateway.stream_options().heartbeat);
    m_timer.async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || !self->m_feed) return;
      if (self->m_sse_writing) {
        // A client that takes nothing for this long is gone or stuck.
        if (Clock::now() - self->m_sse_write_started > self->m_server.options.write_timeout) return self->close_now();
      } else if (!self->m_sse_sent_since_beat) {
        self->m_sse_pending += chunk(": keep-alive\n\n");
        self->sse_write();
      }
      self->m_sse_sent_since_beat = false;
      self->arm_heartbeat();
    });
  }

  // ---- WebSocket
  void start_websocket(WebSocketGrant grant) {
    m_upgraded = true;  // the WsSession takes over this connection's registration
    tcp_layer().expires_never();
    if (auto ws = hand_to_stream_thread<WsSession<Stream>>()) {
      asio::post(ws->executor(), [ws, req = m_parser->release(), grant = std::move(grant)]() mutable {
        ws->run(std::move(req), std::move(grant));
      });
      return;
    }
    auto ws = std::make_shared<WsSession<Stream>>(m_server, std::move(m_stream), m_id);
    ws->run(m_parser->release(), std::move(grant));
  }

  // ---- a PushChannel over SSE (the SignalR hub's SSE transport)
  void start_push_sse(ApiReply reply) {
    m_upgraded = true;  // the PushSseSession takes over this connection's registration
    tcp_layer().expires_never();
    if (auto session = hand_to_stream_thread<PushSseSession<Stream>>()) {
      asio::post(session->executor(), [session, reply = std::move(reply)]() mutable { session->run(std::move(reply)); });
      return;
    }
    auto session = std::make_shared<PushSseSession<Stream>>(m_server, std::move(m_stream), m_id);
    session->run(std::move(reply));
  }

  // ---- handing over to a stream thread
  // Moves this connection to a stream thread (HttpApi::Impl::to_stream_thread)
  // for a new Session there, which takes its registration over; the caller
  // then posts the session's start to its strand, and this session ends
  // when its handler returns. nullptr when the connection stays here (over
  // TLS, without stream threads, or when the move failed and closed it).
  template <class Session>
  std::shared_ptr<Session> hand_to_stream_thread() {
    if constexpr (is_tls<Stream>::value) {
      return nullptr;
    } else {
      auto moved = m_server.to_stream_thread(m_stream);
      if (!moved) return nullptr;
      m_upgraded = true;
      auto session = std::make_shared<Session>(m_server, std::move(*moved), m_id);
      session->idle = false;  // a stream is never closed to make room
      m_server.enroll(m_id, session);
      return session;
    }
  }

  // ---- ending
  void shutdown() {
    m_closed = true;
    m_timer.cancel();
    m_feed.reset();
    m_wait_sub.reset();
    beast::error_code ignored;
    if constexpr (is_tls<Stream>::value) {
      if (m_sse_started) return tcp_layer().close();  // a read is still pending: no TLS close_notify
      tcp_layer().expires_after(std::chrono::seconds(2));
      m_stream.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->tcp_layer().close(); });
    } else {
      if (m_sse_started) return tcp_layer().close();  // its read is still pending
      // A staged close (RFC 9112 9.6): stop sending, then read and drop what
      // the client still sends (the rest of a refused body) for a moment,
      // so that closing does not reset the connection before the client
      // has read the answer.
      tcp_layer().socket().shutdown(tcp::socket::shutdown_send, ignored);
      linger();
    }
  }

  void linger() {
    tcp_layer().expires_after(std::chrono::seconds(2));
    tcp_layer().async_read_some(m_scratch.prepare(65536), [self = this->shared_from_this()](beast::error_code ec,
                                                                                          size_t n) {
      self->m_lingered += n;
      if (ec || self->m_lingered > 2 * self->m_server.options.limits.max_body_bytes + (1 << 20)) {
        return self->tcp_layer().close();
      }
      self->linger();
    });
  }

  void close_now() {
    m_closed = true;
    m_timer.cancel();
    m_feed.reset();
    m_wait_sub.reset();
    m_wait.reset();
    if (!m_upgraded) tcp_layer().close();
  }

  HttpApi::Impl& m_server;
  Stream m_stream;
  uint64_t m_id;
  long long m_connected_us = timeline_now_us();  // the timeline's (0 when it is off)
  asio::steady_timer m_timer;  // a wait's deadline, or the SSE heartbeat
  IocLoad m_load;              // counted on its I/O thread while it lives
  beast::flat_buffer m_buffer;
  beast::flat_buffer m_scratch;
  std::optional<RequestParser> m_parser;
  std::string m_out;  // the reply being written
  std::shared_ptr<http::response<http::empty_body>> m_continue;
  std::string m_remote;
  unsigned m_served = 0;
  size_t m_lingered = 0;  // bytes read and dropped after the last answer
  bool m_head = false;
  bool m_keep_alive = false;
  bool m_closed = false;
  bool m_upgraded = false;
  // Wake-ups from the hub, coalesced: posted at most once until run.
  std::shared_ptr<std::atomic<bool>> m_wake_posted = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<ApiWait> m_wait;
  std::shared_ptr<ChangeHub::Subscription> m_wait_sub;
  std::unique_ptr<ChangeFeed> m_feed;
  bool m_sse_cloudevents = false;
  bool m_sse_writing = false;
  bool m_sse_last_chunk = false;
  bool m_sse_sent_since_beat = false;
  bool m_sse_started = false;
  Clock::time_point m_sse_write_started;
  std::string m_sse_pending;  // bytes due after the write in flight
  std::string m_sse_out;      // the write in flight
};

// ---------------------------------------------------------------- server

HttpApi::Impl::Impl(Gateway& g, HttpOptions o)
    : gateway(g),
      options(std::move(o)),
      iocs(make_iocs(options.io_threads ? options.io_threads : std::max(1u, std::thread::hardware_concurrency()))),
      stream_iocs(make_iocs(options.stream_threads >= 0 ? static_cast<size_t>(options.stream_threads)
                                                        : std::max(1u, std::thread::hardware_concurrency()))) {
  m_ioc_load = std::make_unique<std::atomic<int>[]>(iocs.size());
  for (size_t i = 0; i < iocs.size(); ++i) m_acceptors.push_back(std::make_unique<Acceptor>(*iocs[i], i));
}

std::vector<std::unique_ptr<asio::io_context>> HttpApi::Impl::make_iocs(size_t threads) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  // Concurrency hint 1: each is run by one thread, so Asio's scheduler never
  // tries to wake another to run a handler.
  for (size_t i = 0; i < threads; ++i) out.push_back(std::make_unique<asio::io_context>(1));
  return out;
}

Result<int> HttpApi::Impl::bind() {
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    try {
      tls.emplace(ssl::context::tls_server);
      tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
      tls->use_certificate_chain_file(options.tls_cert);
      tls->use_private_key_file(options.tls_key, ssl::context::pem);
    } catch (const std::exception&) {
      return Error{"cannot load the TLS certificate " + options.tls_cert + " or key " + options.tls_key};
    }
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(options.host == "localhost" ? "127.0.0.1" : options.host, ec);
  std::string where = options.host + ":" + std::to_string(options.port);
  if (ec) return Error{"cannot listen on " + where + " (not an IP address)"};
  tcp::endpoint ep(address, static_cast<unsigned short>(options.port));
  tcp::acceptor& first = m_acceptors[0]->acceptor;
  first.open(ep.protocol(), ec);
  // SO_REUSEADDR only: SO_REUSEPORT would let a second daemon bind the same
  // port and silently split the traffic.
  if (!ec) first.set_option(asio::socket_base::reuse_address(true), ec);
  // Accepted sockets inherit it (Linux): small replies must not wait for
  // Nagle, and a new connection needs no setsockopt of its own.
  if (!ec) first.set_option(tcp::no_delay(true), ec);
  if (!ec) first.bind(ep, ec);
  // A deep backlog: a burst of connects (browsers reconnecting their
  // streams after a restart) must not wait for SYN retries.
  if (!ec) first.listen(options.listen_backlog, ec);
  if (ec) {
    return Error{"cannot listen on " + where + " (address in use, or not an address of this host)"};
  }
  // The other I/O threads' acceptors take a copy of the listening socket;
  // all are non-blocking, for on_accept's synchronous accepts.
  for (auto& a : m_acceptors) {
    if (&a->acceptor != &first) {
      int fd = ::dup(first.native_handle());
      if (fd < 0) return Error{"cannot listen on " + where + " (out of descriptors)"};
      a->acceptor.assign(ep.protocol(), fd, ec);
      if (ec) ::close(fd);
    }
    if (!ec) a->acceptor.non_blocking(true, ec);
    if (ec) return Error{"cannot listen on " + where + " (" + ec.message() + ")"};
  }
  return static_cast<int>(first.local_endpoint().port());
}

void HttpApi::Impl::start() {
  for (auto& ioc : iocs) m_work.emplace_back(ioc->get_executor());
  for (auto& ioc : stream_iocs) m_work.emplace_back(ioc->get_executor());
  for (auto& a : m_acceptors) accept_next(*a);
  auto run_thread = [](asio::io_context* ioc, const char* name) {
    name_this_thread(name);
    for (;;) {
      try {
        ioc->run();
        return;
      } catch (const std::exception& e) {
        log_error("unhandled exception on an I/O thread", {{"error", e.what()}});
      }
    }
  };
  for (auto& ioc_ptr : iocs) m_threads.emplace_back(run_thread, ioc_ptr.get(), "aops-io");
  for (auto& ioc_ptr : stream_iocs) m_threads.emplace_back(run_thread, ioc_ptr.get(), "aops-stream");
}

size_t HttpApi::Impl::pick_ioc(size_t local) const {
  int here = m_ioc_load[local].load(std::memory_order_relaxed);
  size_t best = local;
  int least = here;
  for (size_t i = 0; i < iocs.size(); ++i) {
    int n = m_ioc_load[i].load(std::memory_order_relaxed);
    if (n < least) {
      least = n;
      best = i;
    }
  }
  return here - least <= 1 + least / 8 ? local : best;
}

void HttpApi::Impl::accept_next(Acceptor& a) {
  size_t target = pick_ioc(a.index);
  a.acceptor.async_accept(asio::make_strand(*iocs[target]), [this, &a, target](beast::error_code ec, tcp::socket s) {
    on_accept(a, ec, std::move(s), target);
  });
}

void HttpApi::Impl::on_accept(Acceptor& a, beast::error_code ec, tcp::socket socket, size_t target) {
  if (stopping || !a.acceptor.is_open()) return;
  if (ec) {
    // Out of descriptors, most likely: try again shortly instead of spinning.
    log_warn("accept failed", {{"error", ec.message()}});
    a.retry.expires_after(std::chrono::milliseconds(50));
    a.retry.async_wait([this, &a](beast::error_code e) {
      if (!e && !stopping) accept_next(a);
    });
    return;
  }
  start_session(std::move(socket), target);
  // Then take what else waits in the listen queue, now: one accept per trip
  // through this thread's queue would leave a new client behind every
  // connect of a burst (bench/slowloris.sh: 10,000 connections reopened at
  // once), each accepted after a turn of the handlers queued meanwhile.
  // The other I/O threads take their share of it at the same time.
  for (size_t i = 0; i < k_accept_burst; ++i) {
    size_t to = pick_ioc(a.index);
    tcp::socket next(asio::make_strand(*iocs[to]));
    a.acceptor.accept(next, ec);  // non-blocking: would_block once the queue is empty
    if (ec) break;  // any other error: the next async accept meets it too
    start_session(std::move(next), to);
  }
  accept_next(a);
}

void HttpApi::Impl::start_session(tcp::socket socket, size_t target) {
  uint64_t id = 0;
  if (!admit(&id)) {
    beast::error_code ignored;
    socket.close(ignored);  // every connection is busy: refuse this one
    return;
  }
  IocLoad load(&m_ioc_load[target]);
  if (tls) {
    std::make_shared<HttpSession<TlsStream>>(*this, TlsStream(std::move(socket), *tls), id, std::move(load))->run();
  } else {
    std::make_shared<HttpSession<beast::tcp_stream>>(*this, beast::tcp_stream(std::move(socket)), id, std::move(load))
        ->run();
  }
}

void HttpApi::Impl::stop() {
  if (stopping.exchange(true)) return;
  for (auto& a : m_acceptors) {
    asio::post(*iocs[a->index], [&a = *a] {
      beast::error_code ignored;
      a.acceptor.close(ignored);
      a.retry.cancel();
    });
  }
  std::vector<std::shared_ptr<Connection>> open;
  {
    MutexLock lock(&m_conn_mutex);
    for (auto& [id, weak] : m_conns) {
      if (auto c = weak.lock()) open.push_back(std::move(c));
    }
  }
  for (auto& c : open) c->evict();
  open.clear();
  m_work.clear();
  // Give the closes a moment to run, then stop whatever is left.
  auto deadline = Clock::now() + std::chrono::seconds(2);
  while (connections() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (auto& ioc : iocs) ioc->stop();
  for (auto& ioc : stream_iocs) ioc->stop();
  for (auto& t : m_threads) {
    if (t.joinable()) t.join();
  }
  stream_wakes.close();
}

HttpApi::HttpApi(Gateway& gateway, HttpOptions options)
    : m_impl(std::make_unique<Impl>(gateway, std::move(options))) {}

HttpApi::~HttpApi() { stop(); }

Result<int> HttpApi::bind() { return m_impl->bind(); }
void HttpApi::start() { m_impl->start(); }
void HttpApi::stop() { m_impl->stop(); }
size_t HttpApi::connections() const { return m_impl->connections(); }

// ------------------------------------------------------------ the seam

std::string render_http_response(const ApiReply& reply, bool head, bool keep_alive) {
  const bool body = has_body(reply.status);
  std::string_view reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(reply.status)));
  std::string out;
  size_t size = 64 + reason.size() + reply.content_type.size() + (body && !head ? reply.body.size() : 0);
  for (const auto& [k, v] : reply.headers) size += k.size() + v.size() + 4;
  out.reserve(size);
  char status[8];
  std::snprintf(status, sizeof status, "%03d", reply.status % 1000);
  out.append("HTTP/1.1 ").append(status).append(" ").append(reason).append("\r\n");
  // Cache-Control, and with a body Content-Type and Content-Length, are
  // the server's: the reply's own are replaced, as Beast's set() did.
  // Connection goes last, from the reply's first (connection_value).
  std::optional<std::string_view> connection;
  for (const auto& [k, v] : reply.headers) {
    if (k.empty() || has_crlf(k) || has_crlf(v)) continue;
    if (beast::iequals(k, "cache-control")) continue;
    if (body && (beast::iequals(k, "content-length") || (!reply.content_type.empty() && beast::iequals(k, "content-type"))))
      continue;
    if (beast::iequals(k, "connection")) {
      if (!connection) connection = trim_ows(v);
      continue;
    }
    out.append(k).append(": ").append(trim_ows(v)).append("\r\n");
  }
  out.append("Cache-Control: no-store\r\n");
  if (body) {
    if (!reply.content_type.empty() && !has_crlf(reply.content_type))
      out.append("Content-Type: ").append(trim_ows(reply.content_type)).append("\r\n");
    out.append("Content-Length: ").append(std::to_string(reply.body.size())).append("\r\n");
  }
  std::string conn = connection_value(connection.value_or(std::string_view()), keep_alive);
  if (!conn.empty()) out.append("Connection: ").append(conn).append("\r\n");
  out.append("\r\n");
  if (body && !head) out.append(reply.body);
  return out;
}

std::string render_http_response_with_beast(ApiReply reply, bool head, bool keep_alive) {
  auto res = make_response(std::move(reply), head, keep_alive);
  http::serializer<false, http::string_body> sr(*res);
  std::string out;
  beast::error_code ec;
  while (!ec && !sr.is_done()) {
    sr.next(ec, [&](beast::error_code&, const auto& buffers) {
      for (auto b : beast::buffers_range_ref(buffers)) out.append(static_cast<const char*>(b.data()), b.size());
      sr.consume(beast::buffer_bytes(buffers));
    });
  }
  return out;
}

ParsedRequest parse_http_request(std::string_view bytes, const HttpLimits& limits) {
  ParsedRequest out;
  RequestParser parser;
  configure_parser(parser, limits);
  std::string_view rest = bytes;
  bool checked = false;
  while (!parser.is_done()) {
    if (parser.is_header_done() && !checked) {
      // As a connection does: the head is judged before any body is read.
      checked = true;
      if (auto bad = check_head(parser.get())) {
        out.error = std::move(bad);
        return out;
      }
      continue;
    }
    beast::error_code ec;
    size_t n = parser.put(asio::buffer(rest.data(), rest.size()), ec);
    rest.remove_prefix(n);
    if (ec == http::error::need_more || (!ec && n == 0)) {
      if (n == 0) {
        out.need_more = true;
        return out;
      }
      continue;
    }
    if (ec) {
      out.error = parse_error_reply(ec, parser, rest, limits);
      if (!out.error) out.need_more = true;
      return out;
    }
  }
  if (!checked) {
    if (auto bad = check_head(parser.get())) {
      out.error = std::move(bad);
      return out;
    }
  }
  out.keep_alive = parser.get().keep_alive();
  out.request = to_api_request(parser.get(), "");
  return out;
}

}  // namespace asyncops
