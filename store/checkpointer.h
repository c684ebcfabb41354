#pragma once
// The Checkpointer keeps a SQLite database's WAL short from a thread and a
// connection of its own, so that the thread that writes never stops inside
// a COMMIT to copy the WAL back. The daemon runs one for the store, and
// asyncops-worker one for its service database. SQLite's headers stay in
// the .cpp.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace asyncops {

// The WAL is kept near this many frames; the writer checkpoints on its own
// only past four times as many, a safety net for a Checkpointer that cannot
// keep up.
inline constexpr int k_wal_limit_pages = 16384;  // 64 MiB of 4 KiB pages

// Checkpointer: copies the WAL back into the database file every interval,
// on its own thread and connection, so that the writing thread (the
// daemon's group commit, a worker's loop) never stops to checkpoint. Its
// writer moves SQLite's automatic checkpoint out to 4 × the limit.
class Checkpointer {
 public:
  // on_large_wal runs on the checkpointer's thread after a checkpoint that
  // leaves more than wal_limit_pages frames in the WAL (it is not reset
  // while a writer keeps appending); it is handed to the writer, which calls
  // checkpoint_between_transactions after its next commit.
  Checkpointer(std::string path, std::chrono::milliseconds interval = std::chrono::seconds(1),
               std::function<void()> on_large_wal = nullptr,
               int wal_limit_pages = k_wal_limit_pages);
  ~Checkpointer();
  void start();
  void stop();

 private:
  std::string m_path;
  std::chrono::milliseconds m_interval;
  std::function<void()> m_on_large_wal;
  int m_wal_limit_pages;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stopping = false;  // GUARDED_BY(m_mutex)
  std::thread m_thread;
};

// On the writer's connection, between two of its transactions, when the
// Checkpointer's on_large_wal asked for it: copies the frames committed
// since the Checkpointer's last pass. True if that copied the whole WAL, so
// that the next transaction starts it again from its beginning.
bool checkpoint_between_transactions(sqlite3* db);

}  // namespace asyncops
