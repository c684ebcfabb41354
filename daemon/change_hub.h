#pragma once
// ChangeHub: the committed changes of the last little while, in memory, so
// that waiters (?wait=N, Prefer: wait, the SSE streams) learn of a change
// without asking the store. The group-commit thread publishes; any thread
// waits. Older changes than the ring holds are read from the store's history.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "daemon/store.h"

namespace asyncops {

struct Notice {
  int64_t seq = 0;  // history sequence number
  std::string op_id;
  std::string name;
  OpState state = OpState::pending;
  std::string kind;  // the history kind: accepted, processing, completed, ...
  std::string op_json;  // the operation's JSON after this change
};

class ChangeHub {
 public:
  explicit ChangeHub(size_t capacity = 16384) : m_capacity(capacity) {}

  // Called by the group-commit thread after each commit, in seq order.
  void publish(const std::vector<Change>& changes);

  int64_t latest_seq() const;

  // Appends the notices with seq > after to out, at most max of them.
  // Returns false when the ring no longer holds all of them (the caller
  // must read the gap from the store).
  bool notices_after(int64_t after, std::vector<Notice>* out, size_t max = SIZE_MAX) const;

  // Blocks until a notice with seq > after exists, the deadline passes, or
  // shutdown(). Returns true if there is something new.
  bool wait_after(int64_t after, std::chrono::steady_clock::time_point deadline) const;

  void shutdown();
  bool is_shut_down() const;

 private:
  const size_t m_capacity;
  mutable std::mutex m_mutex;
  mutable std::condition_variable m_cv;
  std::deque<Notice> m_ring;  // GUARDED_BY(m_mutex)
  int64_t m_latest = 0;       // GUARDED_BY(m_mutex)
  bool m_shutdown = false;    // GUARDED_BY(m_mutex)
};

}  // namespace asyncops
