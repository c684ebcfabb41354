// Cross-thread eventfd ping-pong: round trips per second over ~0.5 s.
#include <sys/eventfd.h>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.5;
  int a = eventfd(0, 0), b = eventfd(0, 0);
  std::thread t([&] {
    uint64_t v;
    for (;;) {
      if (read(a, &v, 8) != 8) return;
      if (v == 2) return;
      uint64_t one = 1;
      if (write(b, &one, 8) != 8) return;
    }
  });
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  long n = 0;
  uint64_t v, one = 1;
  while (std::chrono::steady_clock::now() < end) {
    if (write(a, &one, 8) != 8) break;
    if (read(b, &v, 8) != 8) break;
    ++n;
  }
  uint64_t two = 2;
  if (write(a, &two, 8) != 8) return 1;
  t.join();
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("%.0f\n", n / el);
}
