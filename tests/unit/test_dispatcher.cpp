#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "daemon/dispatcher.h"
#include "shared/ids.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

namespace {

Command command(int i) {
  Command c;
  c.id = new_uuid_v7();
  c.name = "create_user";
  c.service = "users";
  c.payload = {{"n", i}};
  return c;
}

Change change(const std::string& id, OpState state) {
  Change c;
  c.kind = history_kind_of(state);
  c.op.id = id;
  c.op.service = "users";
  c.op.state = state;
  return c;
}

std::vector<Command> receive(zmq::socket_t& pull, size_t n) {
  std::vector<Command> got;
  pull.set(zmq::sockopt::rcvtimeo, 10000);
  while (got.size() < n) {
    std::vector<zmq::message_t> parts;
    REQUIRE(zmq::recv_multipart(pull, std::back_inserter(parts)));
    REQUIRE(parts.size() == 2);
    auto c = decode_command(parts[0].to_string(), parts[1].to_string());
    REQUIRE(c);
    got.push_back(std::move(c.value()));
  }
  return got;
}

// A dispatcher for the service "users" on ipc endpoints in a temp dir, and
// sockets to play its workers.
struct Rig {
  TempDir dir;
  zmq::context_t ctx{1};
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::string control = "ipc://" + dir.path + "/control.ipc";
  std::unique_ptr<Dispatcher> dispatcher;  // declared after ctx: closed before it

  // Binds and starts it; with_control: the control PUB socket too.
  Dispatcher& start(DispatchOptions options = {}, Dispatcher::Hooks hooks = {}, bool with_control = false) {
    dispatcher = std::make_unique<Dispatcher>(ctx, std::map<std::string, std::string>{{"users", endpoint}},
                                              with_control ? control : "", options, std::move(hooks));
    REQUIRE(dispatcher->bind());
    dispatcher->start();
    return *dispatcher;
  }
  // Hooks that count the operations given up, and note the attempts made.
  std::atomic<int> gave_up{0};
  std::atomic<int> gave_up_attempts{0};
  Dispatcher::Hooks counting_give_ups() {
    Dispatcher::Hooks hooks;
    hooks.on_gave_up = [this](const std::string&, int attempts) {
      gave_up_attempts = attempts;
      ++gave_up;
    };
    return hooks;
  }
  // A worker's PULL socket, connected.
  zmq::socket_t worker() {
    zmq::socket_t pull(ctx, zmq::socket_type::pull);
    pull.connect(endpoint);
    return pull;
  }
};

// Fast leases that give up after max_attempts.
DispatchOptions short_leases(int max_attempts) {
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(100);
  options.backoff = std::chrono::milliseconds(10);
  options.max_attempts = max_attempts;
  return options;
}

// The cancel decisions the dispatcher hands to the store, each answered
// with `answer` as the store would.
struct CancelRecorder {
  std::mutex m;
  std::vector<CancelDecision> decisions;  // GUARDED_BY(m)

  Dispatcher::Hooks hooks(Status answer) {
    Dispatcher::Hooks h;
    h.on_cancel = [this, answer](CancelDecision d, CancelDone done) {
      {
        std::lock_guard<std::mutex> lock(m);
        decisions.push_back(d);
      }
      done(answer);
    };
    return h;
  }
};

}  // namespace

TEST_CASE("a lease keeps one deadline however often it is renewed, and none once it ends", "[dispatcher]") {
  Rig rig;
  Dispatcher& d = rig.start();
  zmq::socket_t pull = rig.worker();

  const size_t n = 200;
  std::vector<Command> cmds;
  for (size_t i = 0; i < n; ++i) cmds.push_back(command(static_cast<int>(i)));
  d.enqueue(cmds);
  auto got = receive(pull, n);
  CHECK(got.size() == n);
  eventually([&] { return d.in_flight() == n && d.deadline_entries() == n; });

  // Every renewal (processing, heartbeats) moves the deadline; it never adds one.
  for (int round = 0; round < 5; ++round) {
    std::vector<Change> progress;
    Heartbeat hb;
    hb.worker = "w";
    for (const Command& c : cmds) {
      progress.push_back(change(c.id, OpState::processing));
      hb.requests.push_back(c.id);
    }
    d.observe(progress);
    d.heartbeat(hb);
  }
  std::vector<Change> done;
  for (size_t i = 0; i < n / 2; ++i) done.push_back(change(cmds[i].id, OpState::completed));
  d.observe(done);
  eventually([&] { return d.in_flight() == n - n / 2; });
  CHECK(d.deadline_entries() == n - n / 2);

  done.clear();
  for (size_t i = n / 2; i < n; ++i) done.push_back(change(cmds[i].id, OpState::rejected));
  d.observe(done);
  eventually([&] { return d.in_flight() == 0; });
  CHECK(d.deadline_entries() == 0);
  d.stop();
}

TEST_CASE("a lease that runs out is redelivered, then given up, leaving no deadline behind", "[dispatcher]") {
  Rig rig;
  Dispatcher& d = rig.start(short_leases(2), rig.counting_give_ups());
  zmq::socket_t pull = rig.worker();

  Command c = command(1);
  d.enqueue({c});
  auto first = receive(pull, 1);
  CHECK(first[0].attempt == 1);
  auto second = receive(pull, 1);  // no progress within the lease
  CHECK(second[0].id == c.id);
  CHECK(second[0].attempt == 2);
  eventually([&] { return rig.gave_up.load() == 1; });
  CHECK(rig.gave_up_attempts.load() == 2);
  eventually([&] { return d.in_flight() == 0; });
  CHECK(d.deadline_entries() == 0);
  CHECK(d.redelivered() == 1);
  d.stop();
}

TEST_CASE("giving up publishes a fence notice for the request on the control socket", "[dispatcher][fence]") {
  Rig rig;
  Dispatcher& d = rig.start(short_leases(1), rig.counting_give_ups(), /*with_control=*/true);
  zmq::socket_t sub(rig.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, k_kind_fence);
  sub.connect(rig.control);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the subscription reach the PUB
  zmq::socket_t pull = rig.worker();

  Command c = command(1);
  d.enqueue({c});
  receive(pull, 1);  // and never answered
  std::vector<zmq::message_t> parts;
  sub.set(zmq::sockopt::rcvtimeo, 10000);
  REQUIRE(zmq::recv_multipart(sub, std::back_inserter(parts)));
  REQUIRE(parts.size() == 2);
  CHECK(parts[0].to_string() == "fence");
  auto f = decode_fence(parts[1].to_string());
  REQUIRE(f);
  CHECK(f->request_id == c.id);
  CHECK(f->service == "users");
  eventually([&] { return rig.gave_up.load() == 1; });
  d.stop();
}

TEST_CASE("a cancel of a command not sent yet takes it back; if that is not stored, it is sent after all",
          "[dispatcher][cancel]") {
  CancelRecorder store;  // outlives the dispatcher that calls it
  Rig rig;
  Dispatcher& d = rig.start({}, store.hooks(Error{"the store is unavailable"}));  // as a failed commit would
  Command c = command(1);
  d.enqueue({c});  // no worker yet: it waits in its queue
  std::atomic<int> answered{0};
  d.cancel(c.id, [&](Status stored) {
    CHECK_FALSE(stored);
    ++answered;
  });
  eventually([&] { return answered.load() == 1; });
  {
    std::lock_guard<std::mutex> lock(store.m);
    REQUIRE(store.decisions.size() == 1);
    CHECK(store.decisions[0].kind == CancelDecision::Kind::taken_back);
    CHECK(store.decisions[0].op_id == c.id);
    CHECK(store.decisions[0].command == "create_user");
  }
  zmq::socket_t pull = rig.worker();
  auto sent = receive(pull, 1);  // the cancel was not stored: the operation goes on
  CHECK(sent[0].id == c.id);
  CHECK_FALSE(sent[0].cancel);
  d.stop();
}

TEST_CASE("a cancel of a sent command is handed to the store before the workers are told", "[dispatcher][cancel]") {
  CancelRecorder store;  // outlives the dispatcher that calls it
  Rig rig;
  Dispatcher& d = rig.start({}, store.hooks(Status::success()), /*with_control=*/true);
  zmq::socket_t sub(rig.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, k_kind_cancel);
  sub.connect(rig.control);
  sub.set(zmq::sockopt::rcvtimeo, 50);
  // Until the subscription has reached the PUB, notices are dropped: cancel
  // an unknown id until one is heard.
  std::string probe = new_uuid_v7();
  for (auto deadline = Clock::now() + std::chrono::seconds(10);;) {
    REQUIRE(Clock::now() < deadline);
    d.cancel(probe, [](Status) {});
    std::vector<zmq::message_t> parts;
    if (zmq::recv_multipart(sub, std::back_inserter(parts))) break;
  }
  zmq::socket_t pull = rig.worker();
  Command c = command(1);
  d.enqueue({c});
  receive(pull, 1);  // a worker has it now
  std::atomic<int> answered{0};
  d.cancel(c.id, [&](Status stored) {
    CHECK(stored);
    ++answered;
  });
  sub.set(zmq::sockopt::rcvtimeo, 10000);
  for (;;) {
    std::vector<zmq::message_t> parts;
    REQUIRE(zmq::recv_multipart(sub, std::back_inserter(parts)));
    auto notice = decode_cancel(parts[1].to_string());
    REQUIRE(notice);
    if (notice->request_id != c.id) continue;  // a late probe
    std::lock_guard<std::mutex> lock(store.m);
    REQUIRE_FALSE(store.decisions.empty());
    CHECK(store.decisions.back().op_id == c.id);  // decided and handed over first
    CHECK(store.decisions.back().kind == CancelDecision::Kind::notify_workers);
    break;
  }
  CHECK(answered.load() == 1);
  d.stop();
}
