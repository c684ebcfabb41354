#pragma once
// WorkerRegistry: the workers the daemon has heard from, by heartbeat.
// The tracker thread updates it; HTTP threads read it.
//
// Worker ids come from peers, so the registry is bounded (issue 15): at most
// max_workers entries. A heartbeat from a new worker when it is full evicts
// the worker heard from longest ago, so a flood of made-up ids cannot grow
// memory, and the real workers, which beat every second, stay listed.
// Heartbeats are bounded in size by decode_heartbeat().
#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"
#include "shared/mutex.h"

namespace asyncops {

inline constexpr size_t k_default_max_workers = 1024;

class WorkerRegistry {
 public:
  // A worker is live while its last heartbeat is younger than timeout.
  explicit WorkerRegistry(std::chrono::milliseconds timeout = std::chrono::seconds(5),
                          size_t max_workers = k_default_max_workers)
      : m_timeout(timeout), m_max_workers(max_workers < 1 ? 1 : max_workers) {}

  void update(const Heartbeat& hb);
  // The same at a given time, for tests.
  void update_at(const Heartbeat& hb, std::chrono::steady_clock::time_point now);
  // Live workers as JSON objects {id, service, host, pid, in_flight,
  // last_heartbeat, age_ms}, by id; forgets workers silent for 10 timeouts.
  nlohmann::json live();
  size_t live_count();
  // Entries held, live or not (at most max_workers).
  size_t size();
  // Workers evicted to make room for a new one.
  uint64_t evicted() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Heartbeat hb;
    Clock::time_point seen;
    int64_t seen_ms = 0;
  };
  const std::chrono::milliseconds m_timeout;
  const size_t m_max_workers;
  mutable Mutex m_mutex;
  std::map<std::string, Entry> m_workers GUARDED_BY(m_mutex);
  std::set<std::pair<Clock::time_point, std::string>> m_by_age GUARDED_BY(m_mutex);  // (seen, id)
  uint64_t m_evicted GUARDED_BY(m_mutex) = 0;
};

}  // namespace asyncops
