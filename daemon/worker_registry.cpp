#include "daemon/worker_registry.h"

#include "shared/clock.h"

namespace asyncops {

void WorkerRegistry::update(const Heartbeat& hb) {
  std::lock_guard<std::mutex> lock(m_mutex);
  Entry& e = m_workers[hb.worker];
  e.hb = hb;
  e.seen = std::chrono::steady_clock::now();
  e.seen_ms = now_ms();
}

nlohmann::json WorkerRegistry::live() {
  auto now = std::chrono::steady_clock::now();
  nlohmann::json out = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(m_mutex);
  for (auto it = m_workers.begin(); it != m_workers.end();) {
    auto age = now - it->second.seen;
    if (age > 10 * m_timeout) {
      it = m_workers.erase(it);
      continue;
    }
    if (age <= m_timeout) {
      const Heartbeat& hb = it->second.hb;
      out.push_back({{"id", hb.worker},
                     {"service", hb.service},
                     {"host", hb.host},
                     {"pid", hb.pid},
                     {"in_flight", hb.in_flight},
                     {"last_heartbeat", format_rfc3339_ms(it->second.seen_ms)},
                     {"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(age).count()}});
    }
    ++it;
  }
  return out;
}

size_t WorkerRegistry::live_count() { return live().size(); }

}  // namespace asyncops
