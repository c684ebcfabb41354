// `asyncops up`'s restart delays (issue 15, item 7).
#include <catch2/catch.hpp>

#include "cli/restart_policy.h"

using namespace asyncops;
using std::chrono::milliseconds;

namespace {

// The delays of n deaths in a row, each after running ran_for.
std::vector<int64_t> delays(ChildKind kind, int n, milliseconds ran_for, bool exited_with_error) {
  std::vector<int64_t> out;
  int quick = 0;
  for (int i = 0; i < n; ++i) {
    RestartPlan p = plan_restart({kind, ran_for, exited_with_error, quick});
    quick = p.quick_deaths;
    out.push_back(p.delay.count());
  }
  return out;
}

}  // namespace

TEST_CASE("a worker that keeps dying young is restarted within about a second", "[up]") {
  CHECK(delays(ChildKind::worker, 8, milliseconds(500), false) ==
        std::vector<int64_t>{100, 200, 400, 800, 1000, 1000, 1000, 1000});
  // An exit code changes nothing for a worker.
  CHECK(delays(ChildKind::worker, 40, milliseconds(0), true).back() == 1000);
}

TEST_CASE("a child that ran a while starts its backoff again", "[up]") {
  RestartPlan p = plan_restart({ChildKind::worker, milliseconds(500), false, 12});
  CHECK(p.delay == milliseconds(1000));
  p = plan_restart({ChildKind::worker, milliseconds(10000), false, p.quick_deaths});
  CHECK(p.delay == milliseconds(100));
  CHECK(p.quick_deaths == 0);
  p = plan_restart({ChildKind::worker, milliseconds(9999), false, p.quick_deaths});
  CHECK(p.delay == milliseconds(100));
  CHECK(p.quick_deaths == 1);
}

TEST_CASE("a daemon killed soon after start is restarted as fast as a worker", "[up]") {
  CHECK(delays(ChildKind::daemon, 6, milliseconds(2000), false) ==
        std::vector<int64_t>{100, 200, 400, 800, 1000, 1000});
}

TEST_CASE("only a daemon that cannot start backs off further, to 30 s", "[up]") {
  CHECK(delays(ChildKind::daemon, 8, milliseconds(50), true) ==
        std::vector<int64_t>{1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000});
  // Once it has run a while, it is back to the short delays.
  RestartPlan p = plan_restart({ChildKind::daemon, milliseconds(60000), true, 7});
  CHECK(p.delay == milliseconds(100));
}
