#include <catch2/catch.hpp>

#include "daemon/worker_registry.h"

using namespace asyncops;

namespace {

Heartbeat beat(const std::string& id) {
  Heartbeat h;
  h.worker = id;
  h.service = "users";
  h.host = "host";
  h.pid = 1;
  return h;
}

}  // namespace

TEST_CASE("a flood of made-up worker ids cannot grow the registry past its bound", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(5), 8);
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 10000; ++i) reg.update_at(beat("fake-" + std::to_string(i)), t0 + std::chrono::microseconds(i));
  CHECK(reg.size() == 8);
  CHECK(reg.evicted() == 10000 - 8);
}

TEST_CASE("a full registry evicts the worker heard from longest ago, not a live one", "[worker_registry]") {
  WorkerRegistry reg(std::chrono::seconds(5), 3);
  auto t0 = std::chrono::steady_clock::now();
  reg.update_at(beat("a"), t0);
  reg.update_at(beat("b"), t0 + std::chrono::milliseconds(1));
  reg.update_at(beat("c"), t0 + std::chrono::milliseconds(2));
  reg.update_at(beat("a"), t0 + std::chrono::milliseconds(3));  // a beats again: b is now the stalest
  reg.update_at(beat("d"), t0 + std::chrono::milliseconds(4));
  CHECK(reg.size() == 3);
  CHECK(reg.evicted() == 1);
  auto live = reg.live();
  std::vector<std::string> ids;
  for (const auto& w : live) ids.push_back(w["id"]);
  CHECK(ids == std::vector<std::string>{"a", "c", "d"});
}

TEST_CASE("the registry keeps no request ids from heartbeats", "[worker_registry]") {
  WorkerRegistry reg;
  Heartbeat h = beat("w");
  h.requests.assign(1000, "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
  reg.update(h);
  auto live = reg.live();
  REQUIRE(live.size() == 1);
  CHECK_FALSE(live[0].contains("requests"));
  CHECK(live.dump().size() < 1000);
}
