#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <thread>

#include "daemon/elastic_pool.h"

using namespace asyncops;

TEST_CASE("the pool grows past its minimum so blocked tasks do not starve others", "[pool]") {
  ElasticPool pool(2, 64, std::chrono::milliseconds(100));
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> started{0};
  // 40 tasks that block (like open SSE streams) must all run at once.
  for (int i = 0; i < 40; ++i) {
    pool.enqueue([&] {
      started++;
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return release; });
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (started.load() < 40 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(started.load() == 40);
  CHECK(pool.threads() >= 40);
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  pool.shutdown();
  CHECK(pool.threads() == 0);
}

TEST_CASE("the pool never exceeds its maximum and queues the rest", "[pool]") {
  ElasticPool pool(1, 4, std::chrono::milliseconds(100));
  std::atomic<int> done{0};
  for (int i = 0; i < 100; ++i) pool.enqueue([&] { done++; });
  pool.shutdown();  // runs what is queued first
  CHECK(done.load() == 100);
}
