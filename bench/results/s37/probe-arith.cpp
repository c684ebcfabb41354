// Two threads of arithmetic for S seconds; prints the iterations of each second (millions).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
int main(int argc, char** argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 60;
  std::atomic<long> total{0};
  std::atomic<bool> stop{false};
  auto work = [&] {
    volatile unsigned x = 1;
    while (!stop) {
      for (int i = 0; i < 10000; ++i) x = x * 1664525u + 1013904223u;
      total += 10000;
    }
  };
  std::thread a(work), b(work);
  long last = 0;
  for (int s = 0; s < seconds; ++s) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long t = total.load();
    printf("%d %.0f\n", s, (t - last) / 1e6);
    fflush(stdout);
    last = t;
  }
  stop = true; a.join(); b.join();
}
