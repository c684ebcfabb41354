#pragma once
// How long `asyncops up` waits before it restarts a child that died: a
// pure function of what it knows, so that the policy is tested alone.
//
// - A child that ran at least k_restart_reset was healthy: its count of
//   quick deaths starts again, and it is restarted after k_restart_first.
// - A child that died sooner (a quick death) waits twice as long as after
//   the one before: 100 ms, 200 ms, 400 ms, 800 ms, then k_restart_cap.
//   Under kill chaos, work waits for a worker for about a second at most.
// - Only a daemon that cannot start at all (it exited with an error code
//   soon after it was started, e.g. a port in use or a corrupt store)
//   backs off further, from 1 s up to k_restart_cap_cannot_start, so that
//   its log is not flooded.
#include <chrono>

namespace asyncops {

enum class ChildKind { daemon, worker };

constexpr std::chrono::milliseconds k_restart_first{100};
constexpr std::chrono::milliseconds k_restart_cap{1000};
constexpr std::chrono::milliseconds k_restart_cannot_start_first{1000};
constexpr std::chrono::milliseconds k_restart_cap_cannot_start{30000};
constexpr std::chrono::milliseconds k_restart_reset{10000};

struct ChildDeath {
  ChildKind kind = ChildKind::worker;
  std::chrono::milliseconds ran_for{0};  // since its last start
  bool exited_with_error = false;        // a nonzero exit code, not a signal
  int quick_deaths = 0;                  // consecutive earlier quick deaths
};

struct RestartPlan {
  std::chrono::milliseconds delay{0};
  int quick_deaths = 0;  // the count to pass with the next death
};

RestartPlan plan_restart(const ChildDeath& death);

}  // namespace asyncops
