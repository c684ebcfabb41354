#include "store/sqlite_health.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <SQLiteCpp/Statement.h>

namespace asyncops {

bool is_corruption_code(int code) {
  int primary = code & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

std::optional<int> corruption_code(const std::exception& e) {
  auto* sql = dynamic_cast<const SQLite::Exception*>(&e);
  if (!sql || !is_corruption_code(sql->getErrorCode())) return std::nullopt;
  return sql->getExtendedErrorCode();
}

namespace {

std::atomic<CorruptionListener*> g_listener{nullptr};

void on_sqlite_log(void*, int code, const char* message) {
  // Called by SQLite, on the thread of the failing call, with the
  // connection's mutex held: only note it here, never call SQLite.
  if (!is_corruption_code(code)) return;
  if (CorruptionListener* l = g_listener.load()) l->corrupt(code, message ? message : "");
}

}  // namespace

bool install_sqlite_error_log() {
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  return sqlite3_config(SQLITE_CONFIG_LOG, on_sqlite_log, nullptr) == SQLITE_OK;
}

void report_sqlite_errors_to(CorruptionListener* listener) { g_listener.store(listener); }

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
