#include "daemon/elastic_pool.h"
#include "shared/log.h"

#include <thread>

namespace asyncops {

ElasticPool::ElasticPool(size_t min_threads, size_t max_threads,
                         std::chrono::milliseconds idle_timeout)
    : m_min(min_threads), m_max(std::max(min_threads, max_threads)), m_idle_timeout(idle_timeout) {
  std::lock_guard<std::mutex> lock(m_mutex);
  for (size_t i = 0; i < m_min; ++i) spawn_locked();
}

ElasticPool::~ElasticPool() { shutdown(); }

void ElasticPool::spawn_locked() {
  ++m_threads;
  // Detached: shutdown() waits on m_exited until every thread has left.
  std::thread([this] {
    name_this_thread("aops-http");
    worker_loop();
  }).detach();
}

void ElasticPool::enqueue(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_jobs.push_back(std::move(fn));
    if (m_idle < m_jobs.size() && m_threads < m_max) spawn_locked();
  }
  m_cv.notify_one();
}

void ElasticPool::shutdown() {
  std::unique_lock<std::mutex> lock(m_mutex);
  m_shutdown = true;
  m_cv.notify_all();
  m_exited.wait(lock, [&] { return m_threads == 0; });
}

size_t ElasticPool::threads() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_threads;
}

size_t ElasticPool::busy() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_threads - m_idle;
}

void ElasticPool::worker_loop() {
  std::unique_lock<std::mutex> lock(m_mutex);
  for (;;) {
    ++m_idle;
    bool woke = m_cv.wait_for(lock, m_idle_timeout, [&] { return !m_jobs.empty() || m_shutdown; });
    --m_idle;
    if (m_jobs.empty()) {
      if (m_shutdown || (!woke && m_threads > m_min)) break;
      continue;
    }
    auto fn = std::move(m_jobs.front());
    m_jobs.pop_front();
    lock.unlock();
    fn();
    fn = nullptr;
    lock.lock();
  }
  --m_threads;
  m_exited.notify_all();
}

}  // namespace asyncops
