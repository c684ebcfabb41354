#include "daemon/store_health.h"

#include <vector>

#include "shared/clock.h"
#include "shared/log.h"
#include "store/sqlite_health.h"

namespace asyncops {

void StoreHealth::after_commit(const std::exception* failure) {
  if (!failure) {
    // Cheap on the hot path: one relaxed load per commit, a store only on
    // the way back from failing.
    if (m_commits_failing.load(std::memory_order_relaxed)) {
      m_commits_failing.store(false, std::memory_order_relaxed);
      if (!is_corrupt()) log_info("store commits succeed again: ready");
    }
    return;
  }
  if (auto code = corruption_code(*failure)) corrupt(*code, failure->what());
  {
    MutexLock lock(&m_mutex);
    m_commit_error = failure->what();
  }
  m_commits_failing.store(true, std::memory_order_relaxed);
}

void StoreHealth::corrupt(int sqlite_code, const std::string& detail) {
  {
    MutexLock lock(&m_mutex);
    if (!m_corrupt_detail.empty()) return;  // logged once
    m_corrupt_detail = detail.empty() ? "SQLite error " + std::to_string(sqlite_code) : detail;
  }
  m_corrupt.store(true, std::memory_order_relaxed);
  log_error("THE STORE IS CORRUPT: not ready from now on; stop the daemon, run `asyncops store check`, and restore "
            "from a backup or `asyncops store export`, or salvage with sqlite3's .recover",
            {{"sqlite_code", std::to_string(sqlite_code)}, {"detail", detail.substr(0, 500)}});
}

std::string StoreHealth::not_ready_reason() const {
  MutexLock lock(&m_mutex);
  if (m_corrupt.load(std::memory_order_relaxed)) {
    return "the store is corrupt (" + m_corrupt_detail + "); restart after `asyncops store check` and a restore";
  }
  if (m_commits_failing.load(std::memory_order_relaxed)) {
    return "store commits are failing (" + m_commit_error + "); ready again after the next commit that succeeds";
  }
  return "";
}

std::string store_not_ready(StoreHealth& health, GroupCommitter& committer) {
  // The answer is taken before the probe is queued, so that it reflects
  // the commits so far, never a probe that raced this call.
  std::string reason = health.not_ready_reason();
  if (health.commits_failing() && !health.is_corrupt()) {
    int64_t now = now_ms(), last = health.m_last_probe_ms.load();
    if (now - last >= 1000 && health.m_last_probe_ms.compare_exchange_strong(last, now)) {
      committer.run_async([now](StoreWriter& w, std::vector<Change>&) { w.write_probe(now); });
    }
  }
  return reason;
}

}  // namespace asyncops
