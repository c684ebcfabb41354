#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "daemon/dispatcher.h"
#include "shared/ids.h"
#include "store_fixture.h"
#include "command_of.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

namespace {

Command command(int i) {
  Command c = command_of("create_user", "users");
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

// Leases short enough for a test to see them run out, retried after 10 ms.
DispatchOptions short_leases(int lease_ms, int max_attempts = DispatchOptions{}.max_attempts) {
  DispatchOptions options;
  options.lease = std::chrono::milliseconds(lease_ms);
  options.backoff = std::chrono::milliseconds(10);
  options.max_attempts = max_attempts;
  return options;
}

// A started dispatcher for "users" on an ipc endpoint in a temp dir, with a
// control PUB beside it when asked for; workers connect with worker(). The
// dispatcher stops when the rig goes, after the test's own sockets closed.
struct Rig {
  TempDir dir;
  zmq::context_t ctx{1};
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  std::string control = "ipc://" + dir.path + "/control.ipc";
  Dispatcher d;
  explicit Rig(DispatchOptions options = {}, Dispatcher::Hooks hooks = {}, bool with_control = false)
      : d(ctx, {{"users", endpoint}}, with_control ? control : "", options, std::move(hooks)) {
    REQUIRE(d.bind());
    d.start();
  }
};

// Enqueues one command and receives it on w twice: attempt 1, then, as
// nothing claims or progresses it within the lease, attempt 2.
Command sent_twice(Dispatcher& d, zmq::socket_t& w) {
  Command c = command(1);
  d.enqueue({c});
  auto first = receive(w, 1);
  REQUIRE(first[0].attempt == 1);
  auto second = receive(w, 1);
  REQUIRE(second[0].id == c.id);
  REQUIRE(second[0].attempt == 2);
  return c;
}

// Counts the dispatcher's give-ups, each of which must come after `attempts`.
struct GiveUps {
  explicit GiveUps(int expected) : attempts(expected) {}
  Dispatcher::Hooks hooks() {
    Dispatcher::Hooks h;
    h.on_gave_up = [this](const std::string&, int made) {
      CHECK(made == attempts);
      ++count;
    };
    return h;
  }
  const int attempts;
  std::atomic<int> count{0};
};

// Stands in for the store behind Dispatcher::Hooks::on_cancel: records each
// decision handed over and answers every one with `outcome`.
struct CancelStore {
  explicit CancelStore(Status answer) : outcome(std::move(answer)) {}
  Dispatcher::Hooks hooks() {
    Dispatcher::Hooks h;
    h.on_cancel = [this](CancelDecision d, CancelDone done) {
      {
        std::lock_guard<std::mutex> lock(m);
        decisions.push_back(d);
      }
      done(outcome);
    };
    return h;
  }
  // The decisions so far, in the order they came.
  std::vector<CancelDecision> decided() {
    std::lock_guard<std::mutex> lock(m);
    return decisions;
  }

  const Status outcome;
  std::mutex m;
  std::vector<CancelDecision> decisions;
};

// Cancels `id` and returns the dispatcher's answer once it comes: whether
// the cancel was stored.
Status cancel_and_wait(Dispatcher& d, const std::string& id) {
  auto answer = std::make_shared<std::promise<Status>>();
  auto answered = answer->get_future();
  d.cancel(id, [answer](Status stored) { answer->set_value(std::move(stored)); });
  REQUIRE(answered.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  return answered.get();
}

// How a command entered the dispatcher's queue: accepted now, or recovered
// from the store after a restart.
enum class Queue { fresh, recovered };

struct QueuedCancel {
  CancelDecision decision;  // the one decision handed to the store
  Command sent_after;       // what a worker that connects afterwards gets
};

// Queues c while no worker is connected, cancels it with the store answering
// `stored`, and checks the dispatcher passes that answer on; then connects a
// worker with credit 1 and receives one command.
QueuedCancel cancel_queued(const Command& c, Queue queue, Status stored) {
  CancelStore store(stored);
  Rig rig(DispatchOptions{}, store.hooks());
  if (queue == Queue::fresh) {
    rig.d.enqueue({c});
  } else {
    rig.d.enqueue_recovered({c});
  }
  CHECK(cancel_and_wait(rig.d, c.id).ok() == stored.ok());
  QueuedCancel r;
  auto decisions = store.decided();
  REQUIRE(decisions.size() == 1);
  r.decision = decisions[0];
  zmq::socket_t w = worker(rig.ctx, rig.endpoint, 1);
  r.sent_after = receive(w, 1)[0];
  return r;
}

}  // namespace

TEST_CASE("a lease keeps one deadline however often it is renewed, and none once it ends", "[dispatcher]") {
  Rig rig;
  Dispatcher& d = rig.d;
  const size_t n = 200;
  zmq::socket_t pull = worker(rig.ctx, rig.endpoint, static_cast<int64_t>(n));

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
}

TEST_CASE("a lease that runs out is redelivered, then given up, leaving no deadline behind", "[dispatcher]") {
  GiveUps gave_up(2);
  Rig rig(short_leases(100, 2), gave_up.hooks());
  Dispatcher& d = rig.d;
  zmq::socket_t pull = worker(rig.ctx, rig.endpoint, 10);

  sent_twice(d, pull);
  eventually([&] { return gave_up.count.load() == 1; });
  eventually([&] { return d.in_flight() == 0; });
  CHECK(d.deadline_entries() == 0);
  CHECK(d.redelivered() == 1);
}

TEST_CASE("a saga settle is never given up, and ends when the store reports its outcome as already known",
          "[dispatcher][saga]") {
  GiveUps gave_up(1);
  Rig rig(short_leases(50, 1), gave_up.hooks());
  Dispatcher& d = rig.d;
  zmq::socket_t pull = worker(rig.ctx, rig.endpoint, 10);
  Command settle = command(1);
  settle.saga = SagaRef{settle.id, "charge", false};
  settle.id = settle.id + ".charge";
  settle.cancel = true;
  settle.max_attempts = k_unlimited_attempts;
  d.enqueue({settle});
  // Sent again and again past --max-attempts 1, never given up.
  for (int attempt = 1; attempt <= 3; ++attempt) REQUIRE(receive(pull, 1)[0].attempt == attempt);
  CHECK(gave_up.count.load() == 0);
  // The step had ended before: the committer says so, and the lease and any
  // waiting redelivery go.
  d.end_leases({settle.id});
  eventually([&] { return d.in_flight() == 0 && d.waiting() == 0 && d.deadline_entries() == 0; });
  CHECK(d.in_flight() == 0);
  CHECK(d.waiting() == 0);
  CHECK(d.deadline_entries() == 0);
}

TEST_CASE("giving up publishes a fence notice for the request on the control socket", "[dispatcher][fence]") {
  GiveUps gave_up(1);
  Rig rig(short_leases(100, 1), gave_up.hooks(), true);
  Dispatcher& d = rig.d;
  zmq::socket_t sub(rig.ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, k_kind_fence);
  sub.connect(rig.control);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the subscription reach the PUB
  zmq::socket_t pull = worker(rig.ctx, rig.endpoint, 10);

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
  eventually([&] { return gave_up.count.load() == 1; });
}

TEST_CASE("a cancel of a command not sent yet takes it back: if that is not stored, it is sent after all",
          "[dispatcher][cancel]") {
  Command c = command(1);
  QueuedCancel r = cancel_queued(c, Queue::fresh, Error{"the store is unavailable"});  // as a failed commit would
  CHECK(r.decision.kind == CancelDecision::Kind::taken_back);
  CHECK(r.decision.op_id == c.id);
  CHECK(r.decision.command == "create_user");
  CHECK(r.sent_after.id == c.id);  // the cancel was not stored: the operation goes on
  CHECK_FALSE(r.sent_after.cancel);
}

TEST_CASE("a cancel never takes back a command recovered after a restart: the last run may have sent it",
          "[dispatcher][cancel]") {
  Command c = command(1);  // attempt 1: no dispatch was recorded before the stop
  QueuedCancel r = cancel_queued(c, Queue::recovered, Status::success());
  CHECK(r.decision.kind == CancelDecision::Kind::notify_workers);
  CHECK(r.decision.op_id == c.id);
  CHECK(r.sent_after.id == c.id);  // still sent: the worker that may have it decides
}

TEST_CASE("a cancel of a sent command is handed to the store before the workers are told", "[dispatcher][cancel]") {
  CancelStore store(Status::success());
  Rig rig(DispatchOptions{}, store.hooks(), true);
  Dispatcher& d = rig.d;
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
  zmq::socket_t w = worker(rig.ctx, rig.endpoint, 1);
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
    auto decisions = store.decided();
    REQUIRE_FALSE(decisions.empty());
    CHECK(decisions.back().op_id == c.id);  // decided and handed over first
    CHECK(decisions.back().kind == CancelDecision::Kind::notify_workers);
    break;
  }
  CHECK(answered.load() == 1);
}

TEST_CASE("commands wait in the daemon while no worker has credit, and go out as credit frees", "[dispatcher][credit]") {
  Rig rig;
  Dispatcher& d = rig.d;
  std::vector<Command> cmds;
  for (int i = 0; i < 5; ++i) cmds.push_back(command(i));
  d.enqueue(cmds);
  eventually([&] { return d.waiting() == 5; });  // no worker yet: no lease runs
  CHECK(d.in_flight() == 0);

  zmq::socket_t w = worker(rig.ctx, rig.endpoint, 2);
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
}

TEST_CASE("a claim is granted to the attempt that holds the lease and refused once it has moved on",
          "[dispatcher][claim]") {
  Rig rig(short_leases(300, 3));
  Dispatcher& d = rig.d;
  zmq::socket_t w = worker(rig.ctx, rig.endpoint, 10);
  Command c = sent_twice(d, w);  // not claimed in time: the lease ran out, attempt 2 came

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
  zmq::socket_t other = worker(rig.ctx, rig.endpoint, 0);
  GrantMessage foreign = claim(other, {{c.id, 2}});
  CHECK(foreign.granted.empty());
}

TEST_CASE("a worker whose connection is gone gets no more commands: the next worker does", "[dispatcher][credit]") {
  Rig rig(short_leases(300));  // what went into the dying pipe comes back soon
  Dispatcher& d = rig.d;
  auto gone = std::make_unique<zmq::socket_t>(worker(rig.ctx, rig.endpoint, 50));
  zmq::socket_t live = worker(rig.ctx, rig.endpoint, 10);
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
}

TEST_CASE("a command names the last ready seq heard on its connection and the lease its send started",
          "[dispatcher][credit][fast_start]") {
  Rig rig(short_leases(60000, 3));  // no redelivery can come in between
  Dispatcher& d = rig.d;
  zmq::socket_t w(rig.ctx, zmq::socket_type::dealer);
  w.set(zmq::sockopt::linger, 0);
  w.connect(rig.endpoint);
  send(w, encode(ReadyMessage{"numbered", "users", 0, 41}));
  send(w, encode(ReadyMessage{"numbered", "users", 1, 42}));
  Command first = command(1);
  d.enqueue({first});
  auto got = receive(w, 1);
  CHECK(got[0].id == first.id);
  CHECK(got[0].ready_seq == 42);
  CHECK(got[0].lease_ms == 60000);
  // A worker that numbers none gets neither (it claims).
  zmq::socket_t plain = worker(rig.ctx, rig.endpoint, 1);
  send(w, encode(ReadyMessage{"numbered", "users", 0, 43}));  // a is busy now
  GrantMessage sync = claim(w, {{new_uuid_v7(), 1}});  // the pause is read
  CHECK(sync.refused.size() == 1);
  Command second = command(2);
  d.enqueue({second});
  auto other = receive(plain, 1);
  CHECK(other[0].id == second.id);
  CHECK(other[0].ready_seq == 0);
  CHECK(other[0].lease_ms == 0);
}
