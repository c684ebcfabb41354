#pragma once
// Pruner: forgets terminal operations (and their history and idempotency
// keys) once they are older than the retention period. It works in small
// batches through the GroupCommitter, so a prune never holds the write lock
// for long and never stalls accepts.
#include <chrono>
#include <thread>

#include "daemon/group_commit.h"
#include "shared/stop_signal.h"

namespace asyncops {

class Pruner {
 public:
  Pruner(GroupCommitter& committer, std::chrono::milliseconds retention, int batch = 500,
         std::chrono::milliseconds idle_interval = std::chrono::seconds(60));
  ~Pruner();
  void start();
  void stop();
  uint64_t pruned() const { return m_pruned.load(); }

 private:
  void run();
  GroupCommitter& m_committer;
  const std::chrono::milliseconds m_retention;
  const int m_batch;
  const std::chrono::milliseconds m_idle;
  StopSignal m_stop;
  std::atomic<uint64_t> m_pruned{0};
  std::thread m_thread;
};

}  // namespace asyncops
