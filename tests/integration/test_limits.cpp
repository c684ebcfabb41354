// Issue 15: what a peer sends on the events socket is bounded. A message over
// a limit is refused and counted; the daemon stays up and nothing is applied.
#include <catch2/catch.hpp>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"
#include "ipc_peer.h"
#include "shared/envelope.h"
#include "shared/ids.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

// A peer on the daemon's events socket, publishing raw frames.
class RawPublisher : IpcPeer {
 public:
  explicit RawPublisher(const std::string& data_dir) : IpcPeer(data_dir, zmq::socket_type::xpub, "events", 2000) {
    m_socket.set(zmq::sockopt::sndhwm, 100000);  // a flood must not be dropped here
  }
  // Waits for the tracker's subscription: a PUB drops what it sends before.
  bool subscribed() {
    zmq::message_t sub;
    return eventually([&] { return m_socket.recv(sub, zmq::recv_flags::dontwait).has_value(); });
  }
  void send(const std::string& kind, const std::string& body) {
    m_socket.send(zmq::buffer(kind), zmq::send_flags::sndmore);
    m_socket.send(zmq::buffer(body));
  }
};

std::string refused(const char* kind, const char* reason) {
  return std::string("asyncops_messages_refused_total{kind=\"") + kind + "\",reason=\"" + reason + "\"}";
}

// Whether one line of the logs holds both a and b.
bool logged_line_with(System& sys, const std::string& a, const std::string& b) {
  std::string logs = sys.logs();
  size_t start = 0;
  while (start < logs.size()) {
    size_t end = logs.find('\n', start);
    if (end == std::string::npos) end = logs.size();
    std::string line = logs.substr(start, end - start);
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

TEST_CASE("a completed event nested 100,000 deep is refused and counted, and the daemon lives on", "[limits]") {
  System sys(0);  // no worker yet: the operation waits
  auto op = sys.create_user("deep@example.com", "Deep");
  std::string id = op["id"];
  RawPublisher peer(sys.data_dir());
  REQUIRE(peer.subscribed());

  std::string deep(100000, '[');
  deep.append(100000, ']');
  std::string body = R"({"v":1,"request_id":")" + id + R"(","state":"completed","type":"user_created",)"
                     R"("code":"success","worker":"evil","attempt":1,"data":)" + deep + "}";
  // Twice, as a worker re-publishing its recorded outcome on redelivery would.
  peer.send(asyncops::k_kind_event, body);
  peer.send(asyncops::k_kind_event, body);
  INFO(sys.logs());
  REQUIRE(eventually([&] { return metric(sys, refused("event", "too_deep")) == 2; }));
  CHECK(sys.daemon().running());
  CHECK(logged_line_with(sys, "refused a message", id));  // logged with the request id

  // The operation was not touched by it, and still completes for real.
  auto now = sys.get("/operations/" + id);
  REQUIRE(now.status == 200);
  CHECK(now.json["state"] == "pending");
  sys.start_worker();
  auto done = sys.wait_terminal(id);
  CHECK(done["state"] == "completed");
  CHECK(done["code"] == "success");
  CHECK(sys.get(op["resource"]).json["name"] == "Deep");
}

TEST_CASE("an event over 1 MiB is refused as too_large", "[limits]") {
  System sys(0);
  auto op = sys.create_user("big@example.com", "Big");
  std::string id = op["id"];
  RawPublisher peer(sys.data_dir());
  REQUIRE(peer.subscribed());
  asyncops::Event e;
  e.request_id = id;
  e.state = asyncops::OpState::completed;
  e.data = {{"blob", std::string(2 << 20, 'x')}};
  peer.send(asyncops::k_kind_event, asyncops::encode(e).body);
  INFO(sys.logs());
  REQUIRE(eventually([&] { return metric(sys, refused("event", "too_large")) == 1; }));
  CHECK(sys.daemon().running());
  CHECK(sys.get("/operations/" + id).json["state"] == "pending");
}

TEST_CASE("oversized heartbeats are refused and counted, and GET /workers stays small", "[limits]") {
  System sys(0);
  RawPublisher peer(sys.data_dir());
  REQUIRE(peer.subscribed());

  asyncops::Heartbeat many{"many-ids", "users", "host", 1, 0, {}, "", ""};
  for (int i = 0; i < 50000; ++i) many.requests.push_back(asyncops::new_uuid_v7());
  peer.send(asyncops::k_kind_heartbeat, asyncops::encode(many).body);
  asyncops::Heartbeat huge_id{std::string(1 << 20, 'w'), "users", "host", 1, 0, {}, "", ""};
  peer.send(asyncops::k_kind_heartbeat, asyncops::encode(huge_id).body);
  asyncops::Heartbeat long_id{std::string(asyncops::k_max_id_bytes + 1, 'w'), "users", "host", 1, 0, {}, "", ""};
  peer.send(asyncops::k_kind_heartbeat, asyncops::encode(long_id).body);
  asyncops::Heartbeat over_cap{"over-cap", "users", "host", 1, 0, {}, "", ""};
  for (size_t i = 0; i <= asyncops::k_max_heartbeat_requests; ++i) over_cap.requests.push_back(asyncops::new_uuid_v7());
  peer.send(asyncops::k_kind_heartbeat, asyncops::encode(over_cap).body);
  INFO(sys.logs());
  REQUIRE(eventually([&] { return metric(sys, refused("heartbeat", "too_large")) == 2; }));
  REQUIRE(eventually([&] { return metric(sys, refused("heartbeat", "field_too_long")) == 1; }));
  REQUIRE(eventually([&] { return metric(sys, refused("heartbeat", "too_many_ids")) == 1; }));
  CHECK(sys.daemon().running());
  auto workers = sys.get("/workers");
  REQUIRE(workers.status == 200);
  CHECK(workers.json["items"].empty());
  CHECK(workers.body.size() < 100);
}

TEST_CASE("a flood of made-up worker ids is bounded by evicting the stalest", "[limits]") {
  System sys(0);
  RawPublisher peer(sys.data_dir());
  REQUIRE(peer.subscribed());
  const int flood = 3000;
  for (int i = 0; i < flood; ++i) {
    asyncops::Heartbeat h{"fake-" + std::to_string(i), "users", "host", i, 0, {}, "", ""};
    peer.send(asyncops::k_kind_heartbeat, asyncops::encode(h).body);
  }
  INFO(sys.logs());
  REQUIRE(eventually([&] {
    return metric(sys, "asyncops_workers_evicted_total") == flood - static_cast<int64_t>(1024);
  }));
  auto workers = sys.get("/workers");
  REQUIRE(workers.status == 200);
  CHECK(workers.json["items"].size() == 1024);
  CHECK(workers.body.size() < 1024 * 300);
  CHECK(sys.daemon().running());
}
