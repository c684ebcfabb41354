#pragma once
// StopSignal: how a thread that works and then sleeps (the pruner) is told
// to end. stop() ends every sleep at once and every sleep after it.
#include <chrono>

#include "shared/mutex.h"

namespace asyncops {

class StopSignal {
 public:
  void stop() {
    {
      MutexLock lock(&m_mutex);
      m_stopped = true;
    }
    m_cv.notify_all();
  }

  // Sleeps for d, or until stop(); true if stop() was called.
  bool sleep_for(std::chrono::milliseconds d) {
    auto deadline = std::chrono::steady_clock::now() + d;
    MutexLock lock(&m_mutex);
    while (!m_stopped && m_cv.wait_until(&m_mutex, deadline)) {
    }
    return m_stopped;
  }

 private:
  Mutex m_mutex;
  CondVar m_cv;
  bool m_stopped GUARDED_BY(m_mutex) = false;
};

}  // namespace asyncops
