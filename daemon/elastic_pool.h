#pragma once
// ElasticPool: the HTTP server's task queue. cpp-httplib runs each
// connection (all its keep-alive requests, or one long SSE stream) as one
// task on one thread, so a fixed pool is starved by long-lived connections.
// This pool keeps min_threads warm and starts a thread whenever none is
// idle, up to max_threads; past that, connections wait their turn. Threads
// above the minimum exit after idle_timeout.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

#include <httplib.h>

namespace asyncops {

class ElasticPool : public httplib::TaskQueue {
 public:
  ElasticPool(size_t min_threads, size_t max_threads,
              std::chrono::milliseconds idle_timeout = std::chrono::seconds(30));
  ~ElasticPool() override;

  void enqueue(std::function<void()> fn) override;
  // Runs what is queued, then waits for every thread to finish.
  void shutdown() override;

  size_t threads() const;
  size_t busy() const;

 private:
  void spawn_locked();
  void worker_loop();

  const size_t m_min, m_max;
  const std::chrono::milliseconds m_idle_timeout;
  mutable std::mutex m_mutex;
  std::condition_variable m_cv;       // jobs or shutdown
  std::condition_variable m_exited;   // a thread exited
  std::deque<std::function<void()>> m_jobs;  // GUARDED_BY(m_mutex)
  size_t m_threads = 0;                      // GUARDED_BY(m_mutex)
  size_t m_idle = 0;                         // GUARDED_BY(m_mutex)
  bool m_shutdown = false;                   // GUARDED_BY(m_mutex)
};

}  // namespace asyncops
