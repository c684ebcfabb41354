#pragma once
// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable with
// clang's thread-safety annotations (shared/thread_annotations.h), as
// LevelDB's port::Mutex. Members guarded by a Mutex are marked
// GUARDED_BY(m_mutex) and clang's -Wthread-safety checks every access.
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "shared/thread_annotations.h"

namespace asyncops {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { m_mutex.lock(); }
  void unlock() RELEASE() { m_mutex.unlock(); }
  // Tells the analysis the caller holds this mutex (for code it cannot
  // follow, such as a lambda run under the lock).
  void assert_held() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex m_mutex;
};

// Holds a Mutex for its scope.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mutex) ACQUIRE(mutex) : m_mutex(mutex) { m_mutex->lock(); }
  ~MutexLock() RELEASE() { m_mutex->unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const m_mutex;
};

// A condition variable used with a Mutex. Each wait takes that mutex, which
// the caller must hold (clang checks it); it is released while waiting and
// held again on return. Waits may wake spuriously: callers loop on their
// condition.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void wait(Mutex* mutex) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex->m_mutex, std::adopt_lock);
    m_cv.wait(lock);
    lock.release();
  }
  // Returns false when the deadline passed.
  template <class Clock, class Duration>
  bool wait_until(Mutex* mutex, const std::chrono::time_point<Clock, Duration>& deadline) REQUIRES(mutex) {
    std::unique_lock<std::mutex> lock(mutex->m_mutex, std::adopt_lock);
    bool woken = m_cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  void notify_one() { m_cv.notify_one(); }
  void notify_all() { m_cv.notify_all(); }

 private:
  std::condition_variable m_cv;
};

}  // namespace asyncops
