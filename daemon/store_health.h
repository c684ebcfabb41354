#pragma once
// StoreHealth: whether the store can serve, for GET /readyz. Two causes
// make the daemon not ready:
// - commits are failing (a full disk, an I/O error): from the first failed
//   commit until the next one that succeeds;
// - the store is corrupt (SQLITE_CORRUPT or SQLITE_NOTADB met by any
//   connection): for the rest of the daemon's life, since nothing it can
//   do repairs the file. The first report is logged at error level, once.
//
// And the check the daemon runs at start after an unclean stop
// (check_store: PRAGMA quick_check).
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>

#include "daemon/group_commit.h"
#include "shared/mutex.h"
#include "shared/result.h"

namespace asyncops {

// True for SQLite's result codes (primary or extended) that mean the file
// is damaged: SQLITE_CORRUPT and SQLITE_NOTADB.
bool is_corruption_code(int sqlite_code);

class StoreHealth {
 public:
  // After each commit attempt of the group committer: null when it
  // succeeded, else what it threw. A SQLite::Exception whose code is a
  // corruption code also marks the store corrupt. Thread-safe.
  void after_commit(const std::exception* failure);
  // A corruption met anywhere (writer, readers, checkpointer). Thread-safe.
  void corrupt(int sqlite_code, const std::string& detail);

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

// Routes SQLite's error log (SQLITE_CONFIG_LOG) to the health object set
// by report_sqlite_errors_to(), so that corruption met by any connection,
// on any thread, is seen even where the exception is caught and turned
// into a 500. Must be called before the first connection opens (it is a
// process-wide setting); returns false when SQLite is already initialised.
bool install_sqlite_error_log();
// Thread-safe; null stops the routing. The object must outlive its use.
void report_sqlite_errors_to(StoreHealth* health);

// PRAGMA quick_check on the store at path (which must exist): Ok, or an
// error with SQLite's first complaint. Opens its own connection (it only
// reads); reads the whole file, so its cost grows with the store's size.
Status check_store(const std::string& path);

// The one line the daemon logs when it refuses a store that failed
// check_store, saying how to recover.
std::string corrupt_store_advice(const std::string& path, const std::string& detail);

}  // namespace asyncops
