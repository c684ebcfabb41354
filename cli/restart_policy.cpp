#include "cli/restart_policy.h"

#include <algorithm>

namespace asyncops {

RestartPlan plan_restart(const ChildDeath& d) {
  RestartPlan plan;
  if (d.ran_for >= k_restart_reset) {
    plan.delay = k_restart_first;
    plan.quick_deaths = 0;
    return plan;
  }
  plan.quick_deaths = d.quick_deaths + 1;
  bool cannot_start = d.kind == ChildKind::daemon && d.exited_with_error;
  auto first = cannot_start ? k_restart_cannot_start_first : k_restart_first;
  auto cap = cannot_start ? k_restart_cap_cannot_start : k_restart_cap;
  int doublings = std::min(plan.quick_deaths - 1, 16);  // past 16 the cap holds anyway
  plan.delay = std::min<std::chrono::milliseconds>(cap, first * (int64_t{1} << doublings));
  return plan;
}

}  // namespace asyncops
