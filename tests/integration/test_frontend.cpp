// Issue 11: the event-loop front end over real sockets: WebSocket at /ws
// (subscribe, resume, owner scoping, slow-consumer close), strict framing,
// deadlines and the connection limit.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "harness.h"
#include "tests/loopback.h"

using namespace asyncops::it;
using nlohmann::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// A WebSocket client (Beast, synchronous) with a read deadline.
class WsClient {
 public:
  explicit WsClient(const std::string& url, const std::string& token = "", int rcvbuf = 0) : m_ws(m_ioc) {
    tcp::socket& s = m_ws.next_layer();
    s.open(tcp::v4());
    if (rcvbuf > 0) s.set_option(asio::socket_base::receive_buffer_size(rcvbuf));
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_of(url))));
    timeval tv{15, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    m_ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      if (!token.empty()) req.set(beast::http::field::authorization, "Bearer " + token);
    }));
    m_ws.handshake(m_handshake_res, "127.0.0.1", "/ws", m_ec);
  }
  bool open() const { return !m_ec; }
  unsigned handshake_status() const { return m_handshake_res.result_int(); }
  void send(const json& j) { m_ws.write(asio::buffer(j.dump())); }
  // The next frame as JSON; nullopt when the connection closed (see close_code()).
  std::optional<json> next() {
    beast::flat_buffer buf;
    beast::error_code ec;
    m_ws.read(buf, ec);
    if (ec) {
      m_closed_ec = ec;
      return std::nullopt;
    }
    return json::parse(beast::buffers_to_string(buf.data()));
  }
  int close_code() const { return m_ws.reason().code; }
  beast::error_code closed_by() const { return m_closed_ec; }
  void close() {
    beast::error_code ec;
    m_ws.close(websocket::close_code::normal, ec);
  }

 private:
  asio::io_context m_ioc;
  websocket::stream<tcp::socket> m_ws;
  websocket::response_type m_handshake_res;
  beast::error_code m_ec;
  beast::error_code m_closed_ec;
};

// A plain TCP connection for what no well-behaved client would send.
class RawConn {
 public:
  explicit RawConn(const std::string& url) {
    m_fd = asyncops::test::connect_loopback(port_of(url));
    if (m_fd < 0) throw std::runtime_error("connect failed");
  }
  ~RawConn() { ::close(m_fd); }
  bool send(const std::string& s) { return ::send(m_fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
  // Reads until the peer closes or timeout; returns what came.
  std::string read_all(std::chrono::milliseconds timeout, bool* closed = nullptr) {
    std::string out;
    auto deadline = Clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) break;
      pollfd p{m_fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
      char buf[4096];
      ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
      if (n <= 0) {
        if (closed) *closed = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    if (closed) *closed = false;
    return out;
  }

 private:
  int m_fd = -1;
};

// How many of process pid's threads are named name.
int threads_named(pid_t pid, const std::string& name) {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::string comm = slurp(task.path().string() + "/comm");
    if (comm == name + "\n") ++n;
  }
  return n;
}

// threads_named, once it is want or 10 s have passed. A thread names itself
// when it starts (shared/named_thread.h), so the daemon may answer on one
// I/O thread before another has taken its name.
int threads_named_by_then(pid_t pid, const std::string& name, int want) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int n = threads_named(pid, name);
  while (n != want && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    n = threads_named(pid, name);
  }
  return n;
}

}  // namespace

// bench/sse phase C: a stream's writes run on a stream thread, not on the
// I/O threads that answer requests. Both ways must serve SSE and /ws alike.
TEST_CASE("streams are served by their own threads, or by the I/O threads with --stream-threads 0",
          "[frontend][streams]") {
  for (int stream_threads : {3, 0}) {
    CAPTURE(stream_threads);
    System sys(2, {"--io-threads", "2", "--stream-threads", std::to_string(stream_threads)});
    CHECK(threads_named_by_then(sys.daemon().pid(), "aops-io", 2) == 2);
    CHECK(threads_named_by_then(sys.daemon().pid(), "aops-stream", stream_threads) == stream_threads);

    // A live stream of every change, opened before the operation exists.
    RawConn all(sys.url());
    REQUIRE(all.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    std::string head = all.read_all(std::chrono::milliseconds(2000));
    REQUIRE(head.find("200 OK") != std::string::npos);
    REQUIRE(head.find("text/event-stream") != std::string::npos);
    WsClient ws(sys.url());
    REQUIRE(ws.open());

    auto op = sys.create_user("streams" + std::to_string(stream_threads) + "@example.com", "S");
    std::string id = op["id"];
    ws.send({{"subscribe", id}});
    std::vector<std::string> ws_states;
    for (;;) {
      auto f = ws.next();
      REQUIRE(f);
      if (f->contains("end")) break;
      if (f->contains("operation")) ws_states.push_back((*f)["operation"]["state"]);
    }
    REQUIRE(!ws_states.empty());
    CHECK(ws_states.back() == "completed");

    // The /events stream saw the operation end, live.
    std::string seen;
    auto deadline = Clock::now() + std::chrono::seconds(20);
    while (seen.find("\"state\":\"completed\"") == std::string::npos && Clock::now() < deadline) {
      seen += all.read_all(std::chrono::milliseconds(200));
    }
    CHECK(seen.find(id) != std::string::npos);
    CHECK(seen.find("\"state\":\"completed\"") != std::string::npos);

    // One operation's stream, read after its end: the whole of it, then the
    // last chunk, and the server closes the connection.
    RawConn one(sys.url());
    REQUIRE(one.send("GET /operations/" + id + "/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    bool closed = false;
    std::string body = one.read_all(std::chrono::seconds(20), &closed);
    CHECK(closed);
    CHECK(body.find("\"state\":\"completed\"") != std::string::npos);
    CHECK(body.size() >= 5);
    CHECK(body.substr(body.size() - 5) == "0\r\n\r\n");
  }
}

TEST_CASE("websocket: subscribing to an operation follows it to its end", "[ws]") {
  System sys;
  auto op = sys.create_user("ws@example.com", "W");
  std::string id = op["id"];
  WsClient ws(sys.url());
  REQUIRE(ws.open());
  ws.send({{"subscribe", id}});
  auto ack = ws.next();
  REQUIRE(ack);
  CHECK((*ack)["subscribed"] == id);
  std::vector<std::string> states;
  int64_t last = 0;
  for (;;) {
    auto f = ws.next();
    REQUIRE(f);
    if (f->contains("end")) {
      CHECK((*f)["end"] == id);
      break;
    }
    REQUIRE(f->contains("seq"));
    CHECK((*f)["seq"].get<int64_t>() > last);
    last = (*f)["seq"];
    CHECK((*f)["operation"]["id"] == id);
    states.push_back((*f)["operation"]["state"]);
  }
  REQUIRE(!states.empty());
  CHECK(states.back() == "completed");
  // The same document SSE sends for that seq.
  CHECK(sys.get("/operations/" + id).json["state"] == "completed");
}

TEST_CASE("websocket: a reconnect with last_event_id gets exactly the missed changes", "[ws]") {
  System sys(0);  // no workers: one "accepted" change per operation
  WsClient first(sys.url());
  REQUIRE(first.open());
  first.send({{"subscribe", json::object()}});
  REQUIRE((*first.next())["subscribed"] == json::object());
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(sys.create_user("r" + std::to_string(i) + "@example.com", "R")["id"]);
  int64_t last_seq = 0;
  for (int i = 0; i < 3; ++i) {
    auto f = first.next();
    REQUIRE(f);
    CHECK((*f)["operation"]["id"] == ids[i]);
    last_seq = (*f)["seq"];
  }
  first.close();
  std::vector<std::string> missed;
  for (int i = 0; i < 4; ++i) missed.push_back(sys.create_user("m" + std::to_string(i) + "@example.com", "M")["id"]);
  WsClient again(sys.url());
  REQUIRE(again.open());
  again.send({{"subscribe", {{"state", "pending"}}}, {"last_event_id", last_seq}});
  REQUIRE(again.next()->contains("subscribed"));
  for (int i = 0; i < 4; ++i) {
    auto f = again.next();
    REQUIRE(f);
    CHECK((*f)["operation"]["id"] == missed[i]);
    CHECK((*f)["seq"].get<int64_t>() > last_seq);
    last_seq = (*f)["seq"];
  }
  // And then live, with no duplicate.
  std::string live = sys.create_user("live@example.com", "L")["id"];
  auto f = again.next();
  REQUIRE(f);
  CHECK((*f)["operation"]["id"] == live);
}

TEST_CASE("websocket: tokens and owner scoping work as for SSE", "[ws][access]") {
  System sys;
  std::string a = add_token(sys.data_dir(), "alice", "submitter");
  std::string b = add_token(sys.data_dir(), "bob", "submitter");
  REQUIRE(eventually([&] { return sys.get("/operations").status == 401; }, std::chrono::seconds(5)));
  WsClient anon(sys.url());
  CHECK_FALSE(anon.open());
  CHECK(anon.handshake_status() == 401);
  WsClient bob(sys.url(), b);
  REQUIRE(bob.open());
  bob.send({{"subscribe", json::object()}});
  REQUIRE(bob.next()->contains("subscribed"));
  auto alices = sys.send("POST", "/users", R"({"email":"al@example.com","name":"Al"})", "application/json",
                         {{"Authorization", "Bearer " + a}});
  REQUIRE(alices.status == 202);
  std::string alice_id = alices.json["id"];
  bob.send({{"subscribe", alice_id}});
  auto refused = bob.next();
  REQUIRE(refused);
  CHECK((*refused)["error"]["status"] == 404);
  auto bobs = sys.send("POST", "/users", R"({"email":"bo@example.com","name":"Bo"})", "application/json",
                       {{"Authorization", "Bearer " + b}});
  REQUIRE(bobs.status == 202);
  // Everything bob sees up to his own operation's end is his.
  for (;;) {
    auto f = bob.next();
    REQUIRE(f);
    REQUIRE(f->contains("operation"));
    CHECK((*f)["operation"]["id"] == bobs.json["id"]);
    if ((*f)["operation"]["done"] == true) break;
  }
}

TEST_CASE("websocket: a slow consumer is closed with 4001 and resumes from its last seq", "[ws]") {
  System sys(0, {"--ws-max-queue", "8"});
  WsClient slow(sys.url(), "", 4096);
  REQUIRE(slow.open());
  slow.send({{"subscribe", json::object()}});
  REQUIRE(slow.next()->contains("subscribed"));
  // The client reads nothing while far more changes come than its queue
  // and the socket buffers hold.
  std::vector<std::string> ids;
  for (int i = 0; i < 1500; ++i) ids.push_back(sys.create_user("s" + std::to_string(i) + "@example.com", "S")["id"]);
  std::vector<std::string> seen;
  int64_t last_seq = 0;
  while (auto f = slow.next()) {
    REQUIRE(f->contains("seq"));
    CHECK((*f)["seq"].get<int64_t>() > last_seq);
    last_seq = (*f)["seq"];
    seen.push_back((*f)["operation"]["id"]);
  }
  CHECK(slow.close_code() == 4001);
  REQUIRE(seen.size() < ids.size());
  // Resuming from the last seq received delivers the rest: none lost, none twice.
  WsClient resumed(sys.url());
  REQUIRE(resumed.open());
  resumed.send({{"subscribe", json::object()}, {"last_event_id", last_seq}});
  REQUIRE(resumed.next()->contains("subscribed"));
  while (seen.size() < ids.size()) {
    auto f = resumed.next();
    REQUIRE(f);
    seen.push_back((*f)["operation"]["id"]);
  }
  CHECK(seen == ids);
}

TEST_CASE("framing errors get a fast 400, TRACE a 405 with Allow, over the wire", "[frontend]") {
  System sys(0);
  RawConn bad(sys.url());
  auto started = Clock::now();
  bad.send("POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n");
  bool closed = false;
  std::string got = bad.read_all(std::chrono::seconds(5), &closed);
  CHECK(got.rfind("HTTP/1.1 400", 0) == 0);
  CHECK(got.find("application/problem+json") != std::string::npos);
  CHECK(closed);
  CHECK(Clock::now() - started < std::chrono::seconds(3));
  RawConn trace(sys.url());
  trace.send("TRACE /operations HTTP/1.1\r\nHost: x\r\n\r\n");
  got = trace.read_all(std::chrono::seconds(2));
  CHECK(got.rfind("HTTP/1.1 405", 0) == 0);
  CHECK(got.find("Allow: GET, HEAD") != std::string::npos);
}

TEST_CASE("a request head has one deadline, however slowly it trickles in", "[frontend]") {
  System sys(0, {"--header-timeout", "1s"});
  RawConn slowloris(sys.url());
  auto started = Clock::now();
  bool closed = false;
  slowloris.send("GET /healthz HTTP/1.1\r\n");
  for (int i = 0; i < 40 && !closed; ++i) {
    if (!slowloris.send("X")) break;
    slowloris.read_all(std::chrono::milliseconds(150), &closed);
    // Meanwhile other clients are served at once.
    if (i == 2) CHECK(sys.get("/healthz").status == 200);
  }
  CHECK(closed);
  CHECK(Clock::now() - started < std::chrono::seconds(4));
}

TEST_CASE("at --max-connections, idle connections are closed to make room for new ones", "[frontend]") {
  System sys(0, {"--max-connections", "4"});
  std::vector<std::unique_ptr<RawConn>> idle;
  for (int i = 0; i < 6; ++i) {
    idle.push_back(std::make_unique<RawConn>(sys.url()));
    idle.back()->send("GET /heal");  // an incomplete head counts as idle
  }
  // New clients keep being served while the idle ones hold every slot.
  for (int i = 0; i < 5; ++i) CHECK(sys.get("/healthz").status == 200);
  int closed_count = 0;
  for (auto& c : idle) {
    bool closed = false;
    c->read_all(std::chrono::milliseconds(200), &closed);
    closed_count += closed ? 1 : 0;
  }
  CHECK(closed_count >= 2);
}

// bench/slowloris.sh: a burst of connects is taken from the listen queue in
// one go, each connection becoming a session of its own, spread over the
// I/O threads. Every I/O thread accepts, each on its own copy of the
// listening socket; with one I/O thread there is no copy.
TEST_CASE("a burst of connects is accepted in full, each connection served", "[frontend]") {
  std::string io_threads = GENERATE("1", "2", "3");
  CAPTURE(io_threads);
  System sys(0, {"--io-threads", io_threads});
  const int n = 600;
  std::vector<std::unique_ptr<RawConn>> conns;
  // All connected before any request: the listen queue holds them together.
  for (int i = 0; i < n; ++i) conns.push_back(std::make_unique<RawConn>(sys.url()));
  for (auto& c : conns) REQUIRE(c->send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
  int ok = 0;
  for (auto& c : conns) {
    bool closed = false;
    std::string reply = c->read_all(std::chrono::seconds(20), &closed);
    if (closed && reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0) ++ok;
  }
  CHECK(ok == n);
  CHECK(sys.get("/healthz").status == 200);
}
