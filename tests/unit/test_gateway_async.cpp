// Cancel and DELETE /operations/{id} answer through the pending-reply path
// (issue 11): the handler returns at once and the reply follows the commit,
// so no I/O thread waits on the committer or the dispatcher. The commit
// thread is held on a gate to show it.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>

#include "daemon/gateway.h"
#include "daemon/http_api.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

// Holds the commit thread inside a write until opened.
class Gate {
 public:
  void hold(GroupCommitter& gc) {
    gc.run_async([this](StoreWriter&, std::vector<Change>&) {
      std::unique_lock<std::mutex> lock(m_mutex);
      m_held = true;
      m_cv.notify_all();
      m_cv.wait(lock, [this] { return m_open; });
    });
    std::unique_lock<std::mutex> lock(m_mutex);
    m_cv.wait(lock, [this] { return m_held; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_open = true;
    m_cv.notify_all();
  }

 private:
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_held = false;  // GUARDED_BY(m_mutex)
  bool m_open = false;  // GUARDED_BY(m_mutex)
};

struct Api {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  ChangeHub hub;
  GroupCommitter gc{std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()),
                    {[this](const std::vector<Change>& c) { hub.publish(c); }, [](std::vector<Command>) {}}};
  ReaderPool readers{path};
  Gateway gw{RouteTable::load_json(RouteTable::default_json()).value(), gc, readers, hub};

  Api() { gc.start(); }
  ~Api() {
    hub.shutdown();
    gc.stop();
  }
  ApiRequest request(const std::string& method, const std::string& path) {
    ApiRequest r;
    r.method = method;
    r.path = path;
    r.headers["content-type"] = "application/json";
    return r;
  }
  OperationRecord stored(OpState end = OpState::pending) {
    OperationRecord op = gc.accept(new_op()).value().op;
    if (end != OpState::pending) {
      Event e = event_for(op, end, "success");
      gc.run([&e](StoreWriter& w, std::vector<Change>&) {
        Change c;
        w.apply_event(e, now_ms(), &c);
      });
    }
    return op;
  }
};

// One request on a new connection; the raw response, or "" after timeout.
std::string http_exchange(int port, const std::string& request, std::chrono::milliseconds timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  (void)::write(fd, request.data(), request.size());
  std::string response;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    response.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return response;
}

}  // namespace

TEST_CASE("cancel returns a pending reply at once and answers after its commit", "[gateway][async]") {
  Api api;
  OperationRecord op = api.stored();
  Gate gate;
  gate.hold(api.gc);
  // Before issue 11's leftover was done, this call waited for the commit.
  auto begun = std::async(std::launch::async,
                          [&] { return api.gw.begin(api.request("POST", "/operations/" + op.id + "/cancel")); });
  bool returned = begun.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  gate.open();
  REQUIRE(returned);
  ApiReply pending = begun.get();
  CHECK(pending.later);
  ApiReply r = api.gw.resolve_blocking(std::move(pending));
  CHECK(r.status == 202);
  CHECK(json::parse(r.body)["cancel_requested"] == true);
}

TEST_CASE("DELETE of an operation returns a pending reply at once and answers after its commit",
          "[gateway][async]") {
  Api api;
  OperationRecord done = api.stored(OpState::completed);
  OperationRecord running = api.stored();
  Gate gate;
  gate.hold(api.gc);
  auto forget = std::async(std::launch::async, [&] { return api.gw.begin(api.request("DELETE", "/operations/" + done.id)); });
  auto refuse =
      std::async(std::launch::async, [&] { return api.gw.begin(api.request("DELETE", "/operations/" + running.id)); });
  bool returned = forget.wait_for(std::chrono::seconds(10)) == std::future_status::ready &&
                  refuse.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  gate.open();
  REQUIRE(returned);
  ApiReply forgotten = api.gw.resolve_blocking(forget.get());
  CHECK(forgotten.status == 204);
  CHECK(api.gw.handle(api.request("GET", "/operations/" + done.id)).status == 404);
  CHECK(api.gw.resolve_blocking(refuse.get()).status == 409);  // not ended: cancel it first
}

TEST_CASE("a cancel or DELETE waiting for its commit holds no I/O thread: /healthz is answered meanwhile",
          "[gateway][async][http]") {
  Api api;
  OperationRecord pending = api.stored();
  OperationRecord done = api.stored(OpState::completed);
  HttpOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.io_threads = 1;  // one thread: a request that held it would stall every other
  HttpApi http(api.gw, options);
  auto port = http.bind();
  REQUIRE(port);
  http.start();
  Gate gate;
  gate.hold(api.gc);
  auto head = [](const std::string& line) { return line + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"; };
  auto cancel = std::async(std::launch::async, [&] {
    return http_exchange(port.value(), head("POST /operations/" + pending.id + "/cancel"), std::chrono::seconds(30));
  });
  auto forget = std::async(std::launch::async, [&] {
    return http_exchange(port.value(), head("DELETE /operations/" + done.id), std::chrono::seconds(30));
  });
  // Both reach the gateway (and wait for the held commit) before the probe:
  // the committer's queue shows them.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (api.gc.queued() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(api.gc.queued() == 2);
  std::string health = http_exchange(port.value(), head("GET /healthz"), std::chrono::seconds(10));
  CHECK(cancel.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready);  // still waiting
  gate.open();
  CHECK(health.rfind("HTTP/1.1 200", 0) == 0);
  std::string canceled = cancel.get();
  CHECK(canceled.rfind("HTTP/1.1 202", 0) == 0);
  CHECK(canceled.find("\"cancel_requested\":true") != std::string::npos);
  CHECK(forget.get().rfind("HTTP/1.1 204", 0) == 0);
  http.stop();
}
