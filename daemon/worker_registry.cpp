#include "daemon/worker_registry.h"

#include "shared/clock.h"
#include "shared/log.h"

namespace asyncops {

void WorkerRegistry::update(const Heartbeat& hb) { update_at(hb, Clock::now()); }

void WorkerRegistry::update_at(const Heartbeat& hb, Clock::time_point now) {
  MutexLock lock(&m_mutex);
  auto it = m_workers.find(hb.worker);
  if (it == m_workers.end()) {
    if (m_workers.size() >= m_max_workers) {
      auto stalest = m_by_age.begin();
      m_workers.erase(stalest->second);
      m_by_age.erase(stalest);
      // Rate-limited: a flood evicts on every heartbeat.
      if (++m_evicted <= 10 || m_evicted % 1000 == 0) {
        log_warn("worker registry full: forgot the worker heard from longest ago",
                 {{"max_workers", std::to_string(m_max_workers)}, {"evicted", std::to_string(m_evicted)}});
      }
    }
    it = m_workers.emplace(hb.worker, Entry{}).first;
  } else {
    m_by_age.erase({it->second.seen, it->first});
  }
  Entry& e = it->second;
  e.hb = hb;
  e.hb.requests.clear();  // leases are the dispatcher's business; do not keep them here
  e.hb.requests.shrink_to_fit();
  e.seen = now;
  e.seen_ms = now_ms();
  m_by_age.emplace(now, it->first);
}

nlohmann::json WorkerRegistry::live() {
  auto now = Clock::now();
  nlohmann::json out = nlohmann::json::array();
  MutexLock lock(&m_mutex);
  for (auto it = m_workers.begin(); it != m_workers.end();) {
    auto age = now - it->second.seen;
    if (age > 10 * m_timeout) {
      m_by_age.erase({it->second.seen, it->first});
      it = m_workers.erase(it);
      continue;
    }
    if (age <= m_timeout) {
      const Heartbeat& hb = it->second.hb;
      out.push_back({{"id", hb.worker},
                     {"service", hb.service},
                     {"kind", hb.kind},
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

size_t WorkerRegistry::size() {
  MutexLock lock(&m_mutex);
  return m_workers.size();
}

uint64_t WorkerRegistry::evicted() const {
  MutexLock lock(&m_mutex);
  return m_evicted;
}

}  // namespace asyncops
