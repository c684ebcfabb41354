// shared/mutex.h: the annotated Mutex, MutexLock and CondVar behave as the
// std types they wrap. (That clang checks GUARDED_BY is shown by the clang
// builds, which compile with -Werror=thread-safety.)
#include <catch2/catch.hpp>

#include <thread>

#include "shared/mutex.h"
#include "shared/stop_signal.h"

using namespace asyncops;
using Clock = std::chrono::steady_clock;

namespace {
struct Flag {
  Mutex mutex;
  CondVar cv;
  bool set GUARDED_BY(mutex) = false;
};
}  // namespace

TEST_CASE("CondVar::wait_until returns false once the deadline passes", "[mutex]") {
  Flag f;
  MutexLock lock(&f.mutex);
  auto deadline = Clock::now() + std::chrono::milliseconds(20);
  while (f.cv.wait_until(&f.mutex, deadline)) {
  }
  CHECK(Clock::now() >= deadline);
  CHECK_FALSE(f.set);
}

TEST_CASE("CondVar wakes a waiter, which holds the mutex again on return", "[mutex]") {
  Flag f;
  std::thread setter([&] {
    MutexLock lock(&f.mutex);
    f.set = true;
    f.cv.notify_all();
  });
  {
    MutexLock lock(&f.mutex);
    while (!f.set) f.cv.wait(&f.mutex);
    CHECK(f.set);
  }
  setter.join();
}

TEST_CASE("MutexLock excludes: increments from two threads all count", "[mutex]") {
  struct Counter {
    Mutex mutex;
    int n GUARDED_BY(mutex) = 0;
  } c;
  auto add = [&c] {
    for (int i = 0; i < 10000; ++i) {
      MutexLock lock(&c.mutex);
      ++c.n;
    }
  };
  std::thread a(add), b(add);
  a.join();
  b.join();
  MutexLock lock(&c.mutex);
  CHECK(c.n == 20000);
}

TEST_CASE("StopSignal: a sleep lasts its time unless stop() ends it, and every sleep after", "[mutex]") {
  StopSignal signal;
  auto start = Clock::now();
  CHECK_FALSE(signal.sleep_for(std::chrono::milliseconds(20)));
  CHECK(Clock::now() - start >= std::chrono::milliseconds(20));

  std::thread stopper([&] { signal.stop(); });
  CHECK(signal.sleep_for(std::chrono::hours(1)));  // returns once stop() ran
  stopper.join();
  CHECK(signal.sleep_for(std::chrono::hours(1)));
}
