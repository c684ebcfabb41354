#include "daemon/retention.h"

#include "shared/clock.h"
#include "shared/log.h"
#include "shared/named_thread.h"

namespace asyncops {

Pruner::Pruner(GroupCommitter& committer, std::chrono::milliseconds retention, int batch,
               std::chrono::milliseconds idle_interval)
    : m_committer(committer), m_retention(retention), m_batch(batch), m_idle(idle_interval) {}

Pruner::~Pruner() { stop(); }

void Pruner::start() { m_thread = named_thread("aops-prune", [this] { run(); }); }

void Pruner::stop() {
  m_stop.stop();
  if (m_thread.joinable()) m_thread.join();
}

void Pruner::run() {
  for (;;) {
    int n = 0;
    int64_t before = now_ms() - m_retention.count();
    int batch = m_batch;
    auto ran = m_committer.run([&n, before, batch](StoreWriter& w, std::vector<Change>&) { n = w.prune(before, batch); });
    if (ran && n > 0) {
      m_pruned += n;
      log_debug("pruned expired operations", {{"count", std::to_string(n)}});
    }
    // A full batch means there is more: go again soon, leaving room for writes.
    auto pause = ran && n == m_batch ? std::chrono::milliseconds(50) : m_idle;
    if (m_stop.sleep_for(pause)) return;
  }
}

}  // namespace asyncops
