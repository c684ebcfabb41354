#include "store/checkpointer.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include "shared/named_thread.h"

namespace asyncops {

Checkpointer::Checkpointer(std::string path, std::chrono::milliseconds interval, std::function<void()> on_large_wal,
                           int wal_limit_pages)
    : m_path(std::move(path)), m_interval(interval), m_on_large_wal(std::move(on_large_wal)),
      m_wal_limit_pages(wal_limit_pages) {}

Checkpointer::~Checkpointer() { stop(); }

void Checkpointer::start() {
  m_thread = std::thread([this] {
    name_this_thread("aops-checkpoint");
    std::unique_ptr<SQLite::Database> db;
    try {
      db = std::make_unique<SQLite::Database>(m_path, SQLite::OPEN_READWRITE);
      db->setBusyTimeout(1000);
      // A first read opens the WAL: until then sqlite3_wal_checkpoint_v2
      // on this connection reports -1 frames and copies nothing.
      db->exec("SELECT 1 FROM sqlite_schema LIMIT 1");
    } catch (const std::exception&) {
      return;  // the writer then still checkpoints on close
    }
    std::unique_lock<std::mutex> lock(m_mutex);
    while (!m_cv.wait_for(lock, m_interval, [&] { return m_stopping; })) {
      lock.unlock();
      try {
        // PASSIVE: copy what it can without waiting for or blocking anyone.
        int log_frames = 0, copied = 0;
        int rc = sqlite3_wal_checkpoint_v2(db->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
        if (rc == SQLITE_OK && log_frames > m_wal_limit_pages && m_on_large_wal) {
          // Catch up with what was committed during the pass (a few more
          // short passes), so that the writer's own checkpoint, which the
          // commit thread waits for, has almost nothing left to copy.
          for (int pass = 0; pass < 4 && rc == SQLITE_OK && log_frames - copied > 64; ++pass) {
            rc = sqlite3_wal_checkpoint_v2(db->getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
          }
          m_on_large_wal();
        }
      } catch (const std::exception&) {
        // Busy: next time.
      }
      lock.lock();
    }
  });
}

void Checkpointer::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

bool checkpoint_between_transactions(sqlite3* db) {
  int log_frames = 0, copied = 0;
  return sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied) == SQLITE_OK &&
         log_frames == copied;
}

}  // namespace asyncops
