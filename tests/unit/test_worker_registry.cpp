#include <catch2/catch.hpp>

#include "daemon/worker_registry.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;

TEST_CASE("a flood of made-up worker ids cannot grow the registry past its bound", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(5), 8);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) reg.update_at(heartbeat_from("fake-" + std::to_string(i)), t0 + std::chrono::microseconds(i));
  CHECK(reg.size() == 8);
  CHECK(reg.evicted() == 10000 - 8);
}

TEST_CASE("a full registry evicts the worker heard from longest ago, not a live one", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(5), 3);
  auto t0 = std::chrono::steady_clock::now();
  reg.update_at(heartbeat_from("a"), t0);
  reg.update_at(heartbeat_from("b"), t0 + std::chrono::milliseconds(1));
  reg.update_at(heartbeat_from("c"), t0 + std::chrono::milliseconds(2));
  reg.update_at(heartbeat_from("a"), t0 + std::chrono::milliseconds(3));  // a beats again: b is now the stalest
  reg.update_at(heartbeat_from("d"), t0 + std::chrono::milliseconds(4));
  CHECK(reg.size() == 3);
  CHECK(reg.evicted() == 1);
  auto live = reg.live();
  std::vector<std::string> ids;
  for (const auto& w : live) ids.push_back(w["id"]);
  CHECK(ids == std::vector<std::string>{"a", "c", "d"});
}

TEST_CASE("the registry keeps no request ids from heartbeats", "[worker_registry]") {
  WorkerRegistry reg;
  Heartbeat h = heartbeat_from("w");
  h.requests.assign(1000, "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
  reg.update(h);
  auto live = reg.live();
  REQUIRE(live.size() == 1);
  CHECK_FALSE(live[0].contains("requests"));
  CHECK(live.dump().size() < 1000);
}

TEST_CASE("a live worker is listed with what its last heartbeat said", "[worker_registry]") {
  WorkerRegistry reg;
  Heartbeat h = heartbeat_from("w");
  h.pid = 42;
  h.in_flight = 1;
  reg.update(h);
  h.in_flight = 7;  // the same worker again: one entry, the newest values
  reg.update(h);
  auto live = reg.live();
  REQUIRE(live.size() == 1);
  CHECK(live[0]["id"] == "w");
  CHECK(live[0]["service"] == "users");
  CHECK(live[0]["host"] == "host");
  CHECK(live[0]["pid"] == 42);
  CHECK(live[0]["in_flight"] == 7);
  CHECK(live[0]["age_ms"].get<int64_t>() >= 0);
  CHECK(live[0]["last_heartbeat"].get<std::string>().size() == std::string("2026-01-01T00:00:00.000Z").size());
  CHECK(reg.live_count() == 1);
  CHECK(reg.size() == 1);
}

TEST_CASE("a worker silent past the timeout is not live but is kept until ten timeouts", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(5));
  auto now = std::chrono::steady_clock::now();
  reg.update_at(heartbeat_from("fresh"), now);
  reg.update_at(heartbeat_from("quiet"), now - std::chrono::seconds(6));
  reg.update_at(heartbeat_from("gone"), now - std::chrono::seconds(51));
  auto live = reg.live();
  REQUIRE(live.size() == 1);
  CHECK(live[0]["id"] == "fresh");
  // live() forgot "gone" (silent for more than 10 timeouts) but kept "quiet".
  CHECK(reg.size() == 2);
  CHECK(reg.evicted() == 0);  // forgetting is not eviction
  reg.update_at(heartbeat_from("quiet"), std::chrono::steady_clock::now());
  CHECK(reg.live_count() == 2);
}

TEST_CASE("a forgotten worker that beats again is listed again", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(1), 2);
  auto now = std::chrono::steady_clock::now();
  reg.update_at(heartbeat_from("a"), now - std::chrono::seconds(20));
  CHECK(reg.live_count() == 0);
  CHECK(reg.size() == 0);
  reg.update(heartbeat_from("a"));
  reg.update(heartbeat_from("b"));
  CHECK(reg.live_count() == 2);
  CHECK(reg.evicted() == 0);
}
