#pragma once
// StoreHealth: whether the store can serve, for GET /readyz. Two causes
// make the daemon not ready:
// - commits are failing (a full disk, an I/O error): from the first failed
//   commit until the next one that succeeds;
// - the store is corrupt (SQLITE_CORRUPT or SQLITE_NOTADB met by any
//   connection): for the rest of the daemon's life, since nothing it can
//   do repairs the file. The first report is logged at error level, once.
//
// Which failures mean corruption, and the check run at start after an
// unclean stop, are the backend's (store/sqlite_health.h).
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>

#include "daemon/group_commit.h"
#include "shared/mutex.h"
#include "shared/result.h"
#include "store/corruption_listener.h"

namespace asyncops {

class StoreHealth : public CorruptionListener {
 public:
  // After each commit attempt of the group committer: null when it
  // succeeded, else what it threw. A failure the backend says means
  // corruption also marks the store corrupt. Thread-safe.
  void after_commit(const std::exception* failure);
  // A corruption met anywhere (writer, readers, checkpointer). Thread-safe.
  void corrupt(int sqlite_code, const std::string& detail) override;

  bool commits_failing() const { return m_commits_failing.load(std::memory_order_relaxed); }
  bool is_corrupt() const { return m_corrupt.load(std::memory_order_relaxed); }
  // "" when the store can serve; else one sentence that names the cause,
  // for the /readyz problem's detail. Thread-safe.
  std::string not_ready_reason() const;

 private:
  friend std::string store_not_ready(StoreHealth&, GroupCommitter&);
  std::atomic<int64_t> m_last_probe_ms{0};
  std::atomic<bool> m_commits_failing{false};
  std::atomic<bool> m_corrupt{false};
  mutable Mutex m_mutex;
  std::string m_commit_error GUARDED_BY(m_mutex);    // the last failed commit's
  std::string m_corrupt_detail GUARDED_BY(m_mutex);  // the first corruption's
};

// Why the store cannot serve, or "" when it can: the daemon's /readyz.
// While commits are failing (and the store is not corrupt), a call queues
// a probe write on the committer, at most one a second, so that an idle
// daemon learns when space has returned: an empty commit would succeed on
// a full disk and say ready too early. Thread-safe.
std::string store_not_ready(StoreHealth& health, GroupCommitter& committer);

}  // namespace asyncops
