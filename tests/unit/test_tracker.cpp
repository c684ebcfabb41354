// daemon/tracker.h: the events socket. A worker's event reaches the
// committer, a heartbeat reaches the hook, and whatever cannot be decoded is
// refused and counted, never fatal and never applied.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "daemon/metrics.h"
#include "daemon/tracker.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

namespace {

void send(zmq::socket_t& pub, const std::string& kind, const std::string& body) {
  std::array<zmq::const_buffer, 2> parts = {zmq::buffer(kind), zmq::buffer(body)};
  REQUIRE(zmq::send_multipart(pub, parts));
}

void send(zmq::socket_t& pub, const Frames& f) { send(pub, f.kind, f.body); }

// A tracker on an inproc endpoint in front of a committer on a temp store,
// with a PUB socket connected to it as a worker's would be.
struct TrackerRig {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  zmq::context_t ctx;
  std::mutex m;
  std::vector<Heartbeat> beats;  // GUARDED_BY(m)
  std::unique_ptr<GroupCommitter> committer;
  std::unique_ptr<Tracker> tracker;
  zmq::socket_t pub{ctx, zmq::socket_type::pub};

  TrackerRig() {
    committer = std::make_unique<GroupCommitter>(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()),
                                                 GroupCommitter::Hooks{});
    committer->start();
    tracker = std::make_unique<Tracker>(ctx, "inproc://tracker-test", *committer, [this](const Heartbeat& h) {
      std::lock_guard<std::mutex> lock(m);
      beats.push_back(h);
    });
    REQUIRE(tracker->bind());
    tracker->start();
    pub.set(zmq::sockopt::linger, 0);
    pub.connect("inproc://tracker-test");
    // PUB drops what it sends before the subscription has arrived: beat
    // until one gets through.
    eventually([&] {
      send(pub, encode(heartbeat_from("warm-up")));
      return heard() > 0;
    });
  }
  ~TrackerRig() {
    tracker->stop();
    committer->stop();
  }
  size_t heard() {
    std::lock_guard<std::mutex> lock(m);
    return beats.size();
  }
  std::optional<OperationRecord> stored(const std::string& id) {
    return SqliteStoreReader::open(path).value()->get_operation(id);
  }
};

}  // namespace

TEST_CASE("tracker: a worker's event moves its operation along", "[tracker]") {
  TrackerRig rig;
  auto accepted = rig.committer->accept(new_op());
  REQUIRE(accepted);
  send(rig.pub, encode(event_for(accepted->op, OpState::completed)));
  eventually([&] { return rig.stored(accepted->op.id)->state == OpState::completed; });
  CHECK(rig.tracker->bad_frames() == 0);
}

TEST_CASE("tracker: a heartbeat reaches the hook as sent", "[tracker]") {
  TrackerRig rig;
  Heartbeat h = heartbeat_from("w-1");
  h.in_flight = 3;
  send(rig.pub, encode(h));
  auto heard_w1 = [&]() -> std::optional<Heartbeat> {
    std::lock_guard<std::mutex> lock(rig.m);
    for (const auto& b : rig.beats) {
      if (b.worker == "w-1") return b;
    }
    return std::nullopt;
  };
  eventually([&] { return heard_w1().has_value(); });
  CHECK(heard_w1()->in_flight == 3);
  CHECK(heard_w1()->service == "users");
}

TEST_CASE("tracker: an undecodable event is refused and counted by kind and reason, then the next one applies",
          "[tracker]") {
  TrackerRig rig;
  auto accepted = rig.committer->accept(new_op());
  REQUIRE(accepted);
  send(rig.pub, k_kind_event, "{not json");
  send(rig.pub, k_kind_heartbeat, "[]");
  eventually([&] { return rig.tracker->bad_frames() == 2; });
  CHECK(rig.tracker->refused(k_kind_event, Refusal::malformed) == 1);
  CHECK(rig.tracker->refused(k_kind_heartbeat, Refusal::malformed) == 1);
  CHECK(rig.tracker->refused(k_kind_event, Refusal::too_large) == 0);
  DaemonCounters counters;
  for (int r = 0; r < k_refusal_count; ++r) {
    counters.refused[0][r] = rig.tracker->refused(k_kind_event, static_cast<Refusal>(r));
    counters.refused[1][r] = rig.tracker->refused(k_kind_heartbeat, static_cast<Refusal>(r));
  }
  std::string metrics = render(counters);
  CHECK(metrics.find("asyncops_messages_refused_total{kind=\"event\",reason=\"malformed\"} 1\n") != std::string::npos);
  CHECK(metrics.find("asyncops_messages_refused_total{kind=\"heartbeat\",reason=\"too_large\"} 0\n") !=
        std::string::npos);
  CHECK(rig.stored(accepted->op.id)->state == OpState::pending);

  send(rig.pub, encode(event_for(accepted->op, OpState::completed)));
  eventually([&] { return rig.stored(accepted->op.id)->state == OpState::completed; });
}

TEST_CASE("tracker: a message of an unknown kind or the wrong frame count is a bad frame", "[tracker]") {
  TrackerRig rig;
  send(rig.pub, "gossip", "{}");
  std::array<zmq::const_buffer, 3> three = {zmq::str_buffer("event"), zmq::str_buffer("{}"), zmq::str_buffer("x")};
  REQUIRE(zmq::send_multipart(rig.pub, three));
  eventually([&] { return rig.tracker->bad_frames() == 2; });
  CHECK(rig.tracker->refused(k_kind_event, Refusal::malformed) == 0);
}
