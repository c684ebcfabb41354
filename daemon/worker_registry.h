#pragma once
// WorkerRegistry: the workers the daemon has heard from, by heartbeat.
// The tracker thread updates it; HTTP threads read it.
#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"

namespace asyncops {

class WorkerRegistry {
 public:
  // A worker is live while its last heartbeat is younger than timeout.
  explicit WorkerRegistry(std::chrono::milliseconds timeout = std::chrono::seconds(5)) : m_timeout(timeout) {}

  void update(const Heartbeat& hb);
  // Live workers as JSON objects {id, service, host, pid, in_flight,
  // last_heartbeat, age_ms}, by id; forgets workers silent for 10 timeouts.
  nlohmann::json live();
  size_t live_count();

 private:
  struct Entry {
    Heartbeat hb;
    std::chrono::steady_clock::time_point seen;
    int64_t seen_ms = 0;
  };
  const std::chrono::milliseconds m_timeout;
  std::mutex m_mutex;
  std::map<std::string, Entry> m_workers;  // GUARDED_BY(m_mutex)
};

}  // namespace asyncops
