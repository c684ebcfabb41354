#include "daemon/store_health.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

#include "shared/clock.h"
#include "shared/log.h"

namespace asyncops {

bool is_corruption_code(int code) {
  int primary = code & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

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
  if (auto* sql = dynamic_cast<const SQLite::Exception*>(failure); sql && is_corruption_code(sql->getErrorCode())) {
    corrupt(sql->getExtendedErrorCode(), failure->what());
  }
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

namespace {

std::atomic<StoreHealth*> g_health{nullptr};

void on_sqlite_log(void*, int code, const char* message) {
  // Called by SQLite, on the thread of the failing call, with the
  // connection's mutex held: only note it here, never call SQLite.
  if (!is_corruption_code(code)) return;
  if (StoreHealth* h = g_health.load()) h->corrupt(code, message ? message : "");
}

}  // namespace

bool install_sqlite_error_log() {
  return sqlite3_config(SQLITE_CONFIG_LOG, on_sqlite_log, nullptr) == SQLITE_OK;
}

void report_sqlite_errors_to(StoreHealth* health) { g_health.store(health); }

namespace {

// Reads the file through once, sequentially, so that the check finds it in
// the page cache: quick_check walks the b-trees, which on a cold cache is
// random I/O. On a 1,000,000-operation store (830 MB) that is ~6 s of
// reading plus a ~2 s check instead of 15-21 s (bench/README.md). Costs a
// copy when the file is already cached.
void read_ahead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::vector<char> buffer(4 << 20);
  while (::read(fd, buffer.data(), buffer.size()) > 0) {
  }
  ::close(fd);
}

}  // namespace

Status check_store(const std::string& path) {
  read_ahead(path);
  try {
    // Read-write, though it only reads: after a kill the WAL may need
    // recovering, which a read-only connection cannot always do.
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    SQLite::Statement st(db, "PRAGMA quick_check(1)");
    std::string first = st.executeStep() ? st.getColumn(0).getString() : "no answer";
    if (first != "ok") {
      // Its complaint spans lines ("*** in database main ***\nPage 8: ..."):
      // the refusal is one line.
      for (char& c : first) {
        if (c == '\n') c = ' ';
      }
      return Error{first};
    }
    return Status::success();
  } catch (const std::exception& e) {
    return Error{e.what()};
  }
}

std::string corrupt_store_advice(const std::string& path, const std::string& detail) {
  return "store " + path + " failed its integrity check (" + detail +
         "); refusing to start: see `asyncops store check`, then restore a backup or an `asyncops store export`, "
         "or salvage with `sqlite3 " + path + " .recover | sqlite3 NEW.db`";
}

}  // namespace asyncops
