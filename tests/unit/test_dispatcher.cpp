#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <set>
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

void send(zmq::socket_t& s, const Frames& f) {
  std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
  REQUIRE(zmq::send_multipart(s, parts));
}

// A worker's commands socket (docs/protocol.md §4a) that announced credit.
zmq::socket_t worker(zmq::context_t& ctx, const std::string& endpoint, int64_t credit) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(endpoint);
  send(s, encode(ReadyMessage{"test-worker", "users", credit}));
  return s;
}

GrantMessage claim(zmq::socket_t& s, const std::vector<ClaimEntry>& entries) {
  ClaimMessage c;
  c.claims = entries;
  send(s, encode(c));
  s.set(zmq::sockopt::rcvtimeo, 10000);
  for (;;) {
    std::vector<zmq::message_t> parts;
    REQUIRE(zmq::recv_multipart(s, std::back_inserter(parts)));
    REQUIRE(parts.size() == 2);
    if (parts[0].to_string() != k_kind_grant) continue;  // a command meanwhile
    auto g = decode_grant(parts[1].to_string());
    REQUIRE(g);
    return g.value();
  }
}

// Whether anything arrives on s within ms.
bool quiet_for(zmq::socket_t& s, int ms) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  return zmq::poll(&item, 1, std::chrono::milliseconds(ms)) == 0;
}

std::vector<Command> receive(zmq::socket_t& pull, size_t n) {
  std::vector<Command> got;
  pull.set(zmq::sockopt::rcvtimeo, 10000);
  while (got.size() < n) {
    std::vector<zmq::message_t> parts;
    REQUIRE(zmq::recv_multipart(pull, std::back_inserter(parts)));
    REQUIRE(parts.size() == 2);
    if (parts[0].to_string() == k_kind_grant) continue;
    auto c = decode_command(parts[0].to_string(), parts[1].to_string());
    REQUIRE(c);
    got.push_back(std::move(c.value()));
  }
  return got;
}

}  // namespace

TEST_CASE("a lease keeps one deadline however often it is renewed, and none once it ends", "[dispatcher]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  Dispatcher d(ctx, {{"users", endpoint}}, "", DispatchOptions{}, {});
  REQUIRE(d.bind());
  d.start();
  const size_t n = 200;
  zmq::socket_t pull = worker(ctx, endpoint, static_cast<int64_t>(n));

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
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(100);
  options.backoff = std::chrono::milliseconds(10);
  options.max_attempts = 2;
  std::atomic<int> gave_up{0};
  Dispatcher::Hooks hooks;
  hooks.on_gave_up = [&](const std::string&, int attempts) {
    CHECK(attempts == 2);
    ++gave_up;
  };
  Dispatcher d(ctx, {{"users", endpoint}}, "", options, hooks);
  REQUIRE(d.bind());
  d.start();
  zmq::socket_t pull = worker(ctx, endpoint, 10);

  Command c = command(1);
  d.enqueue({c});
  auto first = receive(pull, 1);
  CHECK(first[0].attempt == 1);
  auto second = receive(pull, 1);  // no progress within the lease
  CHECK(second[0].id == c.id);
  CHECK(second[0].attempt == 2);
  eventually([&] { return gave_up.load() == 1; });
  eventually([&] { return d.in_flight() == 0; });
  CHECK(d.deadline_entries() == 0);
  CHECK(d.redelivered() == 1);
  d.stop();
}

TEST_CASE("giving up publishes a fence notice for the request on the control socket", "[dispatcher][fence]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::string control = "ipc://" + dir.path + "/control.ipc";
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(100);
  options.backoff = std::chrono::milliseconds(10);
  options.max_attempts = 1;
  std::atomic<int> gave_up{0};
  Dispatcher::Hooks hooks;
  hooks.on_gave_up = [&](const std::string&, int) { ++gave_up; };
  Dispatcher d(ctx, {{"users", endpoint}}, control, options, hooks);
  REQUIRE(d.bind());
  d.start();
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, k_kind_fence);
  sub.connect(control);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the subscription reach the PUB
  zmq::socket_t pull = worker(ctx, endpoint, 10);

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
  eventually([&] { return gave_up.load() == 1; });
  d.stop();
}

TEST_CASE("a cancel of a command not sent yet takes it back: if that is not stored, it is sent after all",
          "[dispatcher][cancel]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::mutex m;
  std::vector<CancelDecision> decisions;
  Dispatcher::Hooks hooks;
  hooks.on_cancel = [&](CancelDecision d, CancelDone done) {
    {
      std::lock_guard<std::mutex> lock(m);
      decisions.push_back(d);
    }
    done(Error{"the store is unavailable"});  // as a failed commit would
  };
  Dispatcher d(ctx, {{"users", endpoint}}, "", DispatchOptions{}, hooks);
  REQUIRE(d.bind());
  d.start();
  Command c = command(1);
  d.enqueue({c});  // no worker yet: it waits in its queue
  std::atomic<int> answered{0};
  d.cancel(c.id, [&](Status stored) {
    CHECK_FALSE(stored);
    ++answered;
  });
  eventually([&] { return answered.load() == 1; });
  {
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(decisions.size() == 1);
    CHECK(decisions[0].kind == CancelDecision::Kind::taken_back);
    CHECK(decisions[0].op_id == c.id);
    CHECK(decisions[0].command == "create_user");
  }
  zmq::socket_t w = worker(ctx, endpoint, 1);
  auto sent = receive(w, 1);  // the cancel was not stored: the operation goes on
  CHECK(sent[0].id == c.id);
  CHECK_FALSE(sent[0].cancel);
  d.stop();
}

TEST_CASE("a cancel never takes back a command recovered after a restart: the last run may have sent it",
          "[dispatcher][cancel]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::mutex m;
  std::vector<CancelDecision> decisions;
  Dispatcher::Hooks hooks;
  hooks.on_cancel = [&](CancelDecision d, CancelDone done) {
    {
      std::lock_guard<std::mutex> lock(m);
      decisions.push_back(d);
    }
    done(Status::success());
  };
  Dispatcher d(ctx, {{"users", endpoint}}, "", DispatchOptions{}, hooks);
  REQUIRE(d.bind());
  d.start();
  Command c = command(1);  // attempt 1: no dispatch was recorded before the stop
  d.enqueue_recovered({c});  // no worker yet: it waits in its queue
  std::atomic<int> answered{0};
  d.cancel(c.id, [&](Status stored) {
    CHECK(stored);
    ++answered;
  });
  eventually([&] { return answered.load() == 1; });
  {
    std::lock_guard<std::mutex> lock(m);
    REQUIRE(decisions.size() == 1);
    CHECK(decisions[0].kind == CancelDecision::Kind::notify_workers);
    CHECK(decisions[0].op_id == c.id);
  }
  zmq::socket_t w = worker(ctx, endpoint, 1);
  auto sent = receive(w, 1);  // still sent: the worker that may have it decides
  CHECK(sent[0].id == c.id);
  d.stop();
}

TEST_CASE("a cancel of a sent command is handed to the store before the workers are told", "[dispatcher][cancel]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::string control = "ipc://" + dir.path + "/control.ipc";
  zmq::socket_t sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, k_kind_cancel);
  std::mutex m;
  std::vector<CancelDecision> decisions;
  Dispatcher::Hooks hooks;
  hooks.on_cancel = [&](CancelDecision d, CancelDone done) {
    {
      std::lock_guard<std::mutex> lock(m);
      decisions.push_back(d);
    }
    done(Status::success());
  };
  Dispatcher d(ctx, {{"users", endpoint}}, control, DispatchOptions{}, hooks);
  REQUIRE(d.bind());
  d.start();
  sub.connect(control);
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
  zmq::socket_t w = worker(ctx, endpoint, 1);
  Command c = command(1);
  d.enqueue({c});
  receive(w, 1);  // a worker has it now
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
    std::lock_guard<std::mutex> lock(m);
    REQUIRE_FALSE(decisions.empty());
    CHECK(decisions.back().op_id == c.id);  // decided and handed over first
    CHECK(decisions.back().kind == CancelDecision::Kind::notify_workers);
    break;
  }
  CHECK(answered.load() == 1);
  d.stop();
}

TEST_CASE("commands wait in the daemon while no worker has credit, and go out as credit frees", "[dispatcher][credit]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  Dispatcher d(ctx, {{"users", endpoint}}, "", DispatchOptions{}, {});
  REQUIRE(d.bind());
  d.start();
  std::vector<Command> cmds;
  for (int i = 0; i < 5; ++i) cmds.push_back(command(i));
  d.enqueue(cmds);
  eventually([&] { return d.waiting() == 5; });  // no worker yet: no lease runs
  CHECK(d.in_flight() == 0);

  zmq::socket_t w = worker(ctx, endpoint, 2);
  auto got = receive(w, 2);
  CHECK(quiet_for(w, 300));  // its credit is used up
  eventually([&] { return d.waiting() == 3 && d.in_flight() == 2; });
  d.observe({change(got[0].id, OpState::completed)});  // one finishes: one more may go
  auto more = receive(w, 1);
  CHECK(more[0].id == cmds[2].id);
  send(w, encode(ReadyMessage{"test-worker", "users", 0}));  // busy: pause
  // The dispatcher reads a connection's messages in order: once a claim
  // made after the ready is answered, the ready is in effect. (Else the
  // completion below could free the credit before the pause is read.)
  GrantMessage sync = claim(w, {{new_uuid_v7(), 1}});
  CHECK(sync.refused.size() == 1);
  d.observe({change(got[1].id, OpState::completed)});
  CHECK(quiet_for(w, 300));
  send(w, encode(ReadyMessage{"test-worker", "users", 5}));
  receive(w, 2);
  d.stop();
}

TEST_CASE("a claim is granted to the attempt that holds the lease and refused once it has moved on",
          "[dispatcher][claim]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(300);
  options.backoff = std::chrono::milliseconds(10);
  options.max_attempts = 3;
  Dispatcher d(ctx, {{"users", endpoint}}, "", options, {});
  REQUIRE(d.bind());
  d.start();
  zmq::socket_t w = worker(ctx, endpoint, 10);
  Command c = command(1);
  d.enqueue({c});
  auto first = receive(w, 1);
  REQUIRE(first[0].attempt == 1);
  auto second = receive(w, 1);  // not claimed in time: the lease ran out, attempt 2 came
  REQUIRE(second[0].attempt == 2);

  GrantMessage stale = claim(w, {{c.id, 1}});
  CHECK(stale.granted.empty());
  REQUIRE(stale.refused.size() == 1);
  CHECK(stale.refused[0].reason == "lease_lost");
  GrantMessage fresh = claim(w, {{c.id, 2}});
  REQUIRE(fresh.granted.size() == 1);
  CHECK(fresh.lease_ms == 300);
  CHECK(d.claims_granted() == 1);
  CHECK(d.claims_refused() == 1);

  // Another connection cannot claim it: it was not sent there.
  zmq::socket_t other = worker(ctx, endpoint, 0);
  GrantMessage foreign = claim(other, {{c.id, 2}});
  CHECK(foreign.granted.empty());
  d.stop();
}

TEST_CASE("a worker whose connection is gone gets no more commands: the next worker does", "[dispatcher][credit]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(300);  // what went into the dying pipe comes back soon
  options.backoff = std::chrono::milliseconds(10);
  Dispatcher d(ctx, {{"users", endpoint}}, "", options, {});
  REQUIRE(d.bind());
  d.start();
  auto gone = std::make_unique<zmq::socket_t>(worker(ctx, endpoint, 50));
  zmq::socket_t live = worker(ctx, endpoint, 10);
  eventually([&] { return d.worker_connections() == 2; });
  gone.reset();  // closed: the ROUTER drops the connection
  std::vector<Command> cmds;
  for (int i = 0; i < 10; ++i) cmds.push_back(command(i));
  d.enqueue(cmds);
  std::set<std::string> ids;
  while (ids.size() < 10) {
    for (const Command& c : receive(live, 1)) {
      ids.insert(c.id);
      d.observe({change(c.id, OpState::completed)});
    }
  }
  eventually([&] { return d.connections_lost() == 1 && d.worker_connections() == 1; });
  d.stop();
}
