// System calls per second (write of 8 bytes to /dev/null) on one thread for S seconds.
#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
int main(int argc, char** argv) {
  double seconds = argc > 1 ? atof(argv[1]) : 0.3;
  int fd = open("/dev/null", O_WRONLY);
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  long n = 0; char buf[8] = {0};
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 100; ++i) if (write(fd, buf, 8) != 8) return 1;
    n += 100;
  }
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  printf("%.0f\n", n / el / 1000);
}
