// Starting a command without a claim (docs/protocol.md §4a): the real
// asyncops-worker against a daemon played by the test, which sees every
// message on the commands channel, so it can tell a claim from none.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include <SQLiteCpp/SQLiteCpp.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"
#include "shared/envelope.h"
#include "shared/ids.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

// The daemon's three sockets, bound on free ports: SUB for events, ROUTER
// for commands, PUB for control.
struct FakeDaemon {
  zmq::context_t ctx{1};
  zmq::socket_t events{ctx, zmq::socket_type::sub};
  zmq::socket_t commands{ctx, zmq::socket_type::router};
  int events_port = free_port(), commands_port = free_port();
  std::string peer;           // the worker's routing id
  int64_t last_seq = 0;       // of its last ready
  std::vector<int64_t> credits;  // of every ready, in order
  std::vector<std::string> claims;  // bodies of the claims it sent
  std::map<std::string, std::vector<asyncops::Event>> seen;  // every event read, by request id

  FakeDaemon() {
    for (zmq::socket_t* s : {&events, &commands}) s->set(zmq::sockopt::linger, 0);
    events.set(zmq::sockopt::subscribe, "");
    events.bind(tcp(events_port));
    commands.bind(tcp(commands_port));
  }

  // Reads the commands channel for up to timeout: readies and claims.
  void read(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      // A socket takes in new connections only when its own thread calls
      // it: this lets the SUB attach the worker's and send it the
      // subscription the worker waits for.
      (void)events.get(zmq::sockopt::events);
      zmq::pollitem_t item{commands.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(20)) == 0) continue;
      std::vector<zmq::message_t> parts;
      while (zmq::recv_multipart(commands, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        REQUIRE(parts.size() == 3);
        peer = parts[0].to_string();
        if (parts[1].to_string() == asyncops::k_kind_ready) {
          auto r = asyncops::decode_ready(parts[2].to_string());
          REQUIRE(r);
          if (r->seq > last_seq) last_seq = r->seq;
          credits.push_back(r->credit);
        } else if (parts[1].to_string() == asyncops::k_kind_claim) {
          claims.push_back(parts[2].to_string());
        }
        parts.clear();
      }
    }
  }

  // Reads until the worker's first numbered ready; false at the deadline.
  bool wait_ready() {
    return eventually([&] {
      read(std::chrono::milliseconds(50));
      return last_seq > 0;
    });
  }

  // Sends c naming the worker's last ready, with a 30 s lease: a command the
  // worker may start without a claim.
  void send_fresh(asyncops::Command& c) {
    c.ready_seq = last_seq;
    c.lease_ms = 30000;
    send(asyncops::encode(c));
  }

  // Whether a ready after the first `from` announced credit 0.
  bool paused_since(size_t from) const {
    return std::count(credits.begin() + static_cast<std::ptrdiff_t>(from), credits.end(), 0) > 0;
  }

  // Reads until a ready after the first `from` announces a credit above 0.
  bool wait_credit_back(size_t from) {
    return eventually([&] {
      read(std::chrono::milliseconds(20));
      return credits.size() > from && credits.back() > 0;
    });
  }

  void send(const asyncops::Frames& f) {
    std::array<zmq::const_buffer, 3> parts = {zmq::buffer(peer), zmq::buffer(f.kind), zmq::buffer(f.body)};
    REQUIRE(zmq::send_multipart(commands, parts));
  }

  // Reads the events published so far into seen.
  void read_events() {
    std::vector<zmq::message_t> parts;
    while (zmq::recv_multipart(events, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
      if (parts.size() == 2 && parts[0].to_string() == asyncops::k_kind_event) {
        auto e = asyncops::decode_event(parts[1].to_string());
        if (e) seen[e->request_id].push_back(e.value());
      }
      parts.clear();
    }
  }

  // The events published for request id, until one is terminal.
  std::vector<asyncops::Event> events_until_terminal(const std::string& id) {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (Clock::now() < deadline) {
      read(std::chrono::milliseconds(20));  // keeps claims flowing in meanwhile
      read_events();
      auto& got = seen[id];
      if (!got.empty() && asyncops::is_terminal(got.back().state)) return got;
    }
    return seen[id];
  }
};

// The real worker of service against the played daemon, its log in dir.
Process start_worker(const FakeDaemon& daemon, const TempDir& dir, const std::string& service = "users") {
  return Process({ASYNCOPS_WORKER_BIN, "--service", service, "--data-dir", dir.path, "--events",
                  tcp(daemon.events_port), "--commands", tcp(daemon.commands_port), "--control", "-",
                  "--heartbeat-ms", "200"},
                 dir.path + "/worker.log");
}

asyncops::Command create_user(const std::string& email) {
  asyncops::Command c;
  c.id = asyncops::new_uuid_v7();
  c.name = "create_user";
  c.service = "users";
  c.origin = "POST /users";
  std::string user = asyncops::new_uuid_v7();
  c.resource = "/users/" + user;
  c.params = {{"id", user}};
  c.payload = {{"email", email}, {"name", "F"}};
  return c;
}

}  // namespace

TEST_CASE("a worker starts a command without a claim while the lease it names holds, and claims one it cannot vouch for",
          "[fast_start][issue11]") {
  FakeDaemon daemon;
  TempDir dir;
  Process worker = start_worker(daemon, dir);
  if (!daemon.wait_ready()) FAIL("no numbered ready; the worker's log:\n" << slurp(dir.path + "/worker.log"));

  // 1. A command naming the worker's last ready, with a 30 s lease: it runs,
  //    and no claim is sent.
  asyncops::Command fresh = create_user("fresh@example.com");
  daemon.send_fresh(fresh);
  auto got = daemon.events_until_terminal(fresh.id);
  REQUIRE(got.size() == 2);
  CHECK(got[0].state == asyncops::OpState::processing);
  CHECK(got[1].state == asyncops::OpState::completed);
  CHECK(daemon.claims.empty());

  // 2. A lease that has run out by the worker's count: its ready went out
  //    more than lease_ms - margin ago (10 ms + 1 %). It is claimed; a
  //    refused claim means it never runs.
  daemon.read(std::chrono::milliseconds(100));
  asyncops::Command stale = create_user("stale@example.com");
  stale.ready_seq = daemon.last_seq;
  stale.lease_ms = 20;  // 20 - 10 ms of margin: over 10 ms after its ready
  daemon.read(std::chrono::milliseconds(50));
  daemon.send(asyncops::encode(stale));
  REQUIRE(eventually([&] {
    daemon.read(std::chrono::milliseconds(20));
    return daemon.claims.size() == 1;
  }));
  auto claim = asyncops::decode_claim(daemon.claims[0]);
  REQUIRE(claim);
  REQUIRE(claim->claims.size() == 1);
  CHECK(claim->claims[0].id == stale.id);
  asyncops::GrantMessage refused;
  refused.lease_ms = 30000;
  refused.refused.push_back({stale.id, 1, false, "lease_lost"});
  daemon.send(asyncops::encode(refused));

  // 3. A ready_seq the worker never sent, and one from a worker that sends
  //    none (no ready_seq): both are claimed, and run once granted.
  asyncops::Command unknown = create_user("unknown@example.com");
  unknown.ready_seq = daemon.last_seq + 1000000;
  unknown.lease_ms = 30000;
  daemon.send(asyncops::encode(unknown));
  REQUIRE(eventually([&] {
    daemon.read(std::chrono::milliseconds(20));
    return daemon.claims.size() == 2;
  }));
  asyncops::GrantMessage granted;
  granted.lease_ms = 30000;
  granted.granted.push_back({unknown.id, 1, false, ""});
  daemon.send(asyncops::encode(granted));
  auto ran = daemon.events_until_terminal(unknown.id);
  REQUIRE_FALSE(ran.empty());
  CHECK(ran.back().state == asyncops::OpState::completed);

  asyncops::Command unnumbered = create_user("unnumbered@example.com");
  daemon.send(asyncops::encode(unnumbered));
  REQUIRE(eventually([&] {
    daemon.read(std::chrono::milliseconds(20));
    return daemon.claims.size() == 3;
  }));

  // The stale command never ran: nothing was ever published for it (every
  // event read in this test is in seen).
  daemon.read_events();
  CHECK(daemon.seen.count(stale.id) == 0);
  CHECK(daemon.seen.count(unnumbered.id) == 0);  // claimed, never granted

  // 4. The daemon restarts (a new ROUTER on the same port): a command that
  //    names a ready of the old connection is claimed, whatever its lease
  //    says; one naming a ready of the new connection starts at once.
  int64_t old_seq = daemon.last_seq;
  daemon.commands.close();
  daemon.commands = zmq::socket_t(daemon.ctx, zmq::socket_type::router);
  daemon.commands.set(zmq::sockopt::linger, 0);
  REQUIRE(eventually([&] {
    try {
      daemon.commands.bind(tcp(daemon.commands_port));
      return true;
    } catch (const zmq::error_t&) {
      return false;
    }
  }));
  REQUIRE(eventually([&] {
    daemon.read(std::chrono::milliseconds(50));
    return daemon.last_seq > old_seq;
  }));
  size_t claims_before = daemon.claims.size();
  asyncops::Command old_connection = create_user("old@example.com");
  old_connection.ready_seq = old_seq;
  old_connection.lease_ms = 30000;
  daemon.send(asyncops::encode(old_connection));
  REQUIRE(eventually([&] {
    daemon.read(std::chrono::milliseconds(20));
    return daemon.claims.size() == claims_before + 1;
  }));
  auto old_claim = asyncops::decode_claim(daemon.claims.back());
  REQUIRE(old_claim);
  CHECK(old_claim->claims[0].id == old_connection.id);
  worker.signal(SIGTERM);
  REQUIRE(worker.wait(std::chrono::seconds(10)) == 0);
  CHECK(slurp(dir.path + "/worker.log").find("started_without_claim=1") != std::string::npos);  // fresh only
}

TEST_CASE("a quick service's worker pauses its credit for a large batch started without a claim, not for a small one",
          "[fast_start][issue11]") {
  FakeDaemon daemon;
  TempDir dir;
  Process worker = start_worker(daemon, dir);
  REQUIRE(daemon.wait_ready());

  // One command: it runs at once, and the credit is never 0 meanwhile.
  size_t before_one = daemon.credits.size();
  asyncops::Command one = create_user("one@example.com");
  daemon.send_fresh(one);
  auto got = daemon.events_until_terminal(one.id);
  REQUIRE(!got.empty());
  CHECK(got.back().state == asyncops::OpState::completed);
  size_t after_one = daemon.credits.size();
  CHECK(eventually([&] {  // a heartbeat's ready (every 200 ms): still the idle credit
    daemon.read(std::chrono::milliseconds(20));
    return daemon.credits.size() > after_one;
  }));
  CHECK_FALSE(daemon.paused_since(before_one));

  // The same command again (a redelivery): started without a claim too, and
  // the batch's own repeat check answers it with the recorded outcome.
  daemon.seen.erase(one.id);
  one.attempt = 2;
  daemon.send_fresh(one);
  auto again = daemon.events_until_terminal(one.id);
  REQUIRE(!again.empty());
  CHECK(again.back().state == asyncops::OpState::completed);
  CHECK(again.back().attempt == 2);
  CHECK(again.back().resource == got.back().resource);
  CHECK(daemon.claims.empty());

  // 40 commands that arrive together (sent while the worker is stopped):
  // the batch announces credit 0 before it starts, and the idle credit after.
  worker.signal(SIGSTOP);
  size_t before_many = daemon.credits.size();
  std::vector<asyncops::Command> many;
  for (int i = 0; i < 40; ++i) {
    many.push_back(create_user("many" + std::to_string(i) + "@example.com"));
    daemon.send_fresh(many.back());
  }
  worker.signal(SIGCONT);
  for (const auto& c : many) {
    auto events = daemon.events_until_terminal(c.id);
    REQUIRE(!events.empty());
    CHECK(events.back().state == asyncops::OpState::completed);
  }
  CHECK(daemon.claims.empty());
  REQUIRE(daemon.wait_credit_back(before_many));
  CHECK(daemon.paused_since(before_many));
  worker.signal(SIGTERM);
  REQUIRE(worker.wait(std::chrono::seconds(10)) == 0);
  CHECK(slurp(dir.path + "/worker.log").find("started_without_claim=42") != std::string::npos);
  // One user for the command that came twice, and one for each of the 40.
  SQLite::Database db(dir.path + "/users.db", SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("SELECT count(*) FROM users").getInt() == 41);
}

TEST_CASE("a service that may hold on pauses its credit even for one command started without a claim",
          "[fast_start][issue11]") {
  FakeDaemon daemon;
  TempDir dir;
  Process worker = start_worker(daemon, dir, "payments");
  REQUIRE(daemon.wait_ready());
  size_t before = daemon.credits.size();
  asyncops::Command charge;
  charge.id = asyncops::new_uuid_v7();
  charge.name = "charge_card";
  charge.service = "payments";
  charge.origin = "POST /payments";
  charge.resource = "/payments/" + charge.id;
  charge.payload = {{"card", "4000000000000001"}, {"qty", 1}};
  daemon.send_fresh(charge);
  auto got = daemon.events_until_terminal(charge.id);
  if (got.empty()) FAIL("no event for the command; the worker's log:\n" << slurp(dir.path + "/worker.log"));
  CHECK(got.back().state == asyncops::OpState::completed);
  CHECK(daemon.claims.empty());
  REQUIRE(daemon.wait_credit_back(before));
  CHECK(daemon.paused_since(before));
  worker.signal(SIGTERM);
  REQUIRE(worker.wait(std::chrono::seconds(10)) == 0);
}
