#include <catch2/catch.hpp>

#include "daemon/credit.h"
#include "shared/envelope.h"
#include "shared/ids.h"

using namespace asyncops;
using Clock = std::chrono::steady_clock;

TEST_CASE("a command goes only to a connection with free credit, the one with the most", "[credit]") {
  WorkerCredits w;
  auto now = Clock::now();
  CHECK_FALSE(w.pick());
  w.ready("a", "worker-a", 2, now);
  w.ready("b", "worker-b", 1, now);
  CHECK(*w.pick() == "a");
  w.sent("a");
  // a and b have one free each: the one sent to longest ago (never) goes first.
  CHECK(*w.pick() == "b");
  w.sent("b");
  CHECK(*w.pick() == "a");
  w.sent("a");
  CHECK_FALSE(w.pick());  // every credit is in use: commands wait in the daemon
  CHECK(w.free_credit() == 0);
  w.released("b");  // its lease ended
  CHECK(*w.pick() == "b");
}

TEST_CASE("credit is absolute: a ready of 0 pauses a worker, and a repeated ready adds nothing", "[credit]") {
  WorkerCredits w;
  auto now = Clock::now();
  w.ready("a", "worker-a", 3, now);
  w.sent("a");
  w.ready("a", "worker-a", 3, now);  // the periodic repeat
  CHECK(w.free_credit() == 2);
  w.ready("a", "worker-a", 0, now);  // busy
  CHECK_FALSE(w.pick());
  CHECK(w.holding("a") == 1);
}

TEST_CASE("a gone or silent connection is forgotten, and releasing its leases later is harmless", "[credit]") {
  WorkerCredits w;
  auto t0 = Clock::now();
  w.ready("a", "worker-a", 5, t0);
  w.ready("b", "worker-b", 5, t0 + std::chrono::seconds(2));
  w.sent("a");
  CHECK(w.forget("a") == "worker-a");
  w.released("a");
  CHECK(w.peers() == 1);
  auto gone = w.forget_silent(t0 + std::chrono::seconds(6), std::chrono::seconds(3));
  REQUIRE(gone.size() == 1);
  CHECK(gone[0] == "worker-b");
  CHECK_FALSE(w.pick());
}

namespace {
struct Leases {
  std::map<std::string, LeaseView> held;
  std::vector<std::string> renewed;
  GrantMessage claim(const std::string& peer, std::vector<ClaimEntry> entries) {
    ClaimMessage c;
    c.claims = std::move(entries);
    return decide_claims(
        c, peer, 3000,
        [this](const std::string& id) -> const LeaseView* {
          auto it = held.find(id);
          return it == held.end() ? nullptr : &it->second;
        },
        [this](const std::string& id) { renewed.push_back(id); });
  }
};
}  // namespace

TEST_CASE("a claim is granted only for the attempt that holds the lease, on the connection it was sent on",
          "[credit][claim]") {
  Leases l;
  std::string held = new_uuid_v7(), moved = new_uuid_v7(), other_peer = new_uuid_v7(), ended = new_uuid_v7();
  l.held[held] = {2, "a", false};
  l.held[moved] = {3, "a", false};       // redelivered: attempt 3 holds it now
  l.held[other_peer] = {1, "b", false};  // sent on another connection
  GrantMessage g = l.claim("a", {{held, 2}, {moved, 2}, {other_peer, 1}, {ended, 1}});
  CHECK(g.lease_ms == 3000);
  REQUIRE(g.granted.size() == 1);
  CHECK(g.granted[0].id == held);
  CHECK(g.granted[0].attempt == 2);
  REQUIRE(g.refused.size() == 3);
  for (const GrantEntry& r : g.refused) CHECK(r.reason == "lease_lost");
  // Only the grant renews a lease.
  CHECK(l.renewed == std::vector<std::string>{held});
}

TEST_CASE("a grant carries a cancel asked meanwhile, and a repeated entry is answered once", "[credit][claim]") {
  Leases l;
  std::string id = new_uuid_v7();
  l.held[id] = {1, "a", true};
  GrantMessage g = l.claim("a", {{id, 1}, {id, 1}});
  REQUIRE(g.granted.size() == 1);
  CHECK(g.granted[0].cancel);
  CHECK(g.refused.empty());
}

TEST_CASE("ready, claim and grant round-trip and are bounded", "[envelope][credit]") {
  ReadyMessage r{"host/1/abc", "users", 256};
  auto rd = decode_ready(encode(r).body);
  REQUIRE(rd);
  CHECK(rd->credit == 256);
  CHECK(rd->worker == "host/1/abc");
  CHECK_FALSE(decode_ready(R"({"v":1,"credit":1025})"));
  CHECK_FALSE(decode_ready(R"({"v":1,"credit":-1})"));
  CHECK_FALSE(decode_ready(R"({"v":1})"));
  CHECK_FALSE(decode_ready(R"({"v":2,"credit":1})"));

  std::string id = new_uuid_v7();
  ClaimMessage c;
  c.claims.push_back({id, 4});
  auto cd = decode_claim(encode(c).body);
  REQUIRE(cd);
  REQUIRE(cd->claims.size() == 1);
  CHECK(cd->claims[0].attempt == 4);
  CHECK_FALSE(decode_claim(R"({"v":1,"claims":[{"id":"not-a-uuid","attempt":1}]})"));
  CHECK_FALSE(decode_claim(R"({"v":1,"claims":[{"id":")" + id + R"(","attempt":0}]})"));
  CHECK_FALSE(decode_claim(R"({"v":1})"));
  ClaimMessage many;
  for (size_t i = 0; i <= k_max_claims; ++i) many.claims.push_back({id, 1});
  Refusal why = Refusal::malformed;
  CHECK_FALSE(decode_claim(encode(many).body, &why));

  GrantMessage g;
  g.lease_ms = 3000;
  g.granted.push_back({id, 4, true, ""});
  g.refused.push_back({new_uuid_v7(), 1, false, "lease_lost"});
  auto gd = decode_grant(encode(g).body);
  REQUIRE(gd);
  CHECK(gd->lease_ms == 3000);
  REQUIRE(gd->granted.size() == 1);
  CHECK(gd->granted[0].cancel);
  REQUIRE(gd->refused.size() == 1);
  CHECK(gd->refused[0].reason == "lease_lost");
  CHECK_FALSE(decode_grant(R"({"v":1,"granted":[]})"));  // no lease_ms
}

TEST_CASE("a ready's seq round-trips, is bounded, and the dispatcher keeps the highest per connection",
          "[envelope][credit][fast_start]") {
  ReadyMessage r{"host/1/abc", "users", 256, 7};
  auto rd = decode_ready(encode(r).body);
  REQUIRE(rd);
  CHECK(rd->seq == 7);
  ReadyMessage unnumbered{"host/1/abc", "users", 256};
  CHECK(encode(unnumbered).body.find("seq") == std::string::npos);  // a worker that always claims
  CHECK(decode_ready(encode(unnumbered).body)->seq == 0);
  CHECK_FALSE(decode_ready(R"({"v":1,"credit":1,"seq":-1})"));
  CHECK_FALSE(decode_ready(R"({"v":1,"credit":1,"seq":"7"})"));
  CHECK_FALSE(decode_ready(R"({"v":1,"credit":1,"seq":9007199254740993})"));  // past 2^53
  CHECK(decode_ready(R"({"v":1,"credit":1,"seq":9007199254740992})"));

  WorkerCredits w;
  auto now = Clock::now();
  CHECK(w.last_seq("a") == 0);
  w.ready("a", "worker-a", 1, now, 5);
  w.ready("a", "worker-a", 1, now, 4);  // never backwards
  w.ready("b", "worker-b", 1, now);     // b numbers none
  CHECK(w.last_seq("a") == 5);
  CHECK(w.last_seq("b") == 0);
  w.forget("a");
  CHECK(w.last_seq("a") == 0);
}

TEST_CASE("a command's ready_seq and lease_ms round-trip, are sent only when set, and are bounded",
          "[envelope][fast_start]") {
  Command c;
  c.id = new_uuid_v7();
  c.name = "create_user";
  auto plain = encode(c).body;
  CHECK(plain.find("ready_seq") == std::string::npos);
  CHECK(plain.find("lease_ms") == std::string::npos);
  c.ready_seq = 12;
  c.lease_ms = 30000;
  auto d = decode_command(k_kind_command, encode(c).body);
  REQUIRE(d);
  CHECK(d->ready_seq == 12);
  CHECK(d->lease_ms == 30000);
  std::string head = R"({"v":1,"id":")" + c.id + R"(","name":"x",)";
  CHECK_FALSE(decode_command(k_kind_command, head + R"("ready_seq":-1})"));
  CHECK_FALSE(decode_command(k_kind_command, head + R"("ready_seq":1.5})"));
  CHECK_FALSE(decode_command(k_kind_command, head + R"("lease_ms":-1})"));
  CHECK_FALSE(decode_command(k_kind_command, head + R"("lease_ms":31536000001})"));
  CHECK(decode_command(k_kind_command, head + R"("lease_ms":31536000000})"));
}
