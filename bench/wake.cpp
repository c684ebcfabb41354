// What one hand-off between two threads costs on this machine (issue 11):
// the unit of the latency at 200/s, where an operation crosses about a
// dozen threads and processes and each wakes the next. See bench/README.md
// ("A hand-off between threads").
//
//   asyncops-bench-wake [--n N] [--gaps US,US,...] [--rounds K]
//
// Thread A writes an eventfd that thread B sleeps on in poll(); B writes a
// second eventfd back, which A sleeps on. A waits GAP microseconds between
// hand-offs (default 0, 1000 and 5000: back to back, and the idle of a
// worker at the latency probe's pace), so that at larger gaps the sleeping
// side's CPU may have halted. Three placements:
//   same:  both threads pinned to CPU 0: the wake-up needs no other CPU;
//   other: A on CPU 0, B on CPU 1: each wake-up is an interrupt to the
//          other CPU (on a virtual machine, an exit to the host);
//   free:  no pinning: where the scheduler puts them.
// Printed per placement and gap: the waker's write() (what the hand-off
// costs the thread that makes it) and the round trip (two hand-offs), p50
// and p90, in microseconds, the median over K rounds (default 3, order
// rotating). JSON lines on stdout, the table on stderr.
#include <pthread.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bench/args.h"

namespace {

using Clock = std::chrono::steady_clock;

void usage() { std::fprintf(stderr, "usage: asyncops-bench-wake [--n N] [--gaps US,US,...] [--rounds K]\n"); }

struct Options {
  int n = 2000;
  std::vector<int> gaps{0, 1000, 5000};
  int rounds = 3;
};

struct Figures {
  double write_p50 = 0, write_p90 = 0, rtt_p50 = 0, rtt_p90 = 0;
};

double micros(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p / 100 * static_cast<double>(v.size())))];
}

bool pin(pthread_t t, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(t, sizeof set, &set) == 0;
}

void unpin(pthread_t t) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < CPU_SETSIZE; ++c) CPU_SET(c, &set);
  pthread_setaffinity_np(t, sizeof set, &set);
}

void write_one(int fd) {
  uint64_t one = 1;
  if (::write(fd, &one, sizeof one) != sizeof one) {
    std::perror("write");
    std::exit(1);
  }
}

void read_one(int fd) {
  pollfd p{fd, POLLIN, 0};
  while (::poll(&p, 1, -1) < 0) {
  }
  uint64_t v = 0;
  if (::read(fd, &v, sizeof v) != sizeof v) {
    std::perror("read");
    std::exit(1);
  }
}

// One placement at one gap: n hand-offs A -> B -> A.
Figures run_one(const std::string& placement, int gap_us, int n) {
  int to_b = eventfd(0, 0), to_a = eventfd(0, 0);
  if (to_b < 0 || to_a < 0) {
    std::perror("eventfd");
    std::exit(1);
  }
  std::atomic<bool> stop{false};
  std::thread b([&] {
    for (;;) {
      read_one(to_b);
      if (stop.load()) return;
      write_one(to_a);
    }
  });
  pthread_t self = pthread_self();
  if (placement == "same") {
    pin(self, 0);
    pin(b.native_handle(), 0);
  } else if (placement == "other") {
    pin(self, 0);
    pin(b.native_handle(), 1);
  }
  std::vector<double> writes, rtts;
  writes.reserve(static_cast<size_t>(n));
  rtts.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n + 50; ++i) {  // the first 50 warm up
    if (gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
    auto t0 = Clock::now();
    write_one(to_b);
    auto t1 = Clock::now();
    read_one(to_a);
    auto t2 = Clock::now();
    if (i >= 50) {
      writes.push_back(micros(t1 - t0));
      rtts.push_back(micros(t2 - t0));
    }
  }
  stop = true;
  write_one(to_b);
  b.join();
  unpin(self);
  ::close(to_b);
  ::close(to_a);
  return {pct(writes, 50), pct(writes, 90), pct(rtts, 50), pct(rtts, 90)};
}

std::vector<int> parse_gaps(const std::string& text) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 0 || v > 1000000) {
      std::fprintf(stderr, "asyncops-bench-wake: --gaps takes microseconds 0-1000000, comma-separated\n");
      std::exit(2);
    }
    out.push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  FlagReader flags(argc, argv, usage);
  for (std::string a; flags.next(&a);) {
    if (a == "--n") o.n = flags.positive();
    else if (a == "--gaps") o.gaps = parse_gaps(flags.value());
    else if (a == "--rounds") o.rounds = flags.positive();
    else flags.fail();
  }
  std::vector<std::string> placements{"same", "free"};
  if (std::thread::hardware_concurrency() >= 2) placements.insert(placements.begin() + 1, "other");
  std::fprintf(stderr, "hand-offs over an eventfd, n=%d per cell, median of %d rounds (us)\n", o.n, o.rounds);
  std::fprintf(stderr, "%-6s %8s %12s %12s %12s %12s\n", "where", "gap us", "write p50", "write p90", "rtt p50",
               "rtt p90");
  for (int gap : o.gaps) {
    std::vector<std::vector<Figures>> per(placements.size());
    for (int r = 0; r < o.rounds; ++r) {
      for (size_t k = 0; k < placements.size(); ++k) {
        size_t i = (k + static_cast<size_t>(r)) % placements.size();  // the order rotates
        per[i].push_back(run_one(placements[i], gap, o.n));
      }
    }
    for (size_t i = 0; i < placements.size(); ++i) {
      auto median = [&](double Figures::*m) {
        std::vector<double> x;
        for (const Figures& f : per[i]) x.push_back(f.*m);
        std::sort(x.begin(), x.end());
        return x[x.size() / 2];
      };
      Figures f{median(&Figures::write_p50), median(&Figures::write_p90), median(&Figures::rtt_p50),
                median(&Figures::rtt_p90)};
      std::printf("{\"placement\":\"%s\",\"gap_us\":%d,\"n\":%d,\"rounds\":%d,\"write_p50_us\":%.1f,"
                  "\"write_p90_us\":%.1f,\"rtt_p50_us\":%.1f,\"rtt_p90_us\":%.1f}\n",
                  placements[i].c_str(), gap, o.n, o.rounds, f.write_p50, f.write_p90, f.rtt_p50, f.rtt_p90);
      std::fflush(stdout);
      std::fprintf(stderr, "%-6s %8d %12.1f %12.1f %12.1f %12.1f\n", placements[i].c_str(), gap, f.write_p50,
                   f.write_p90, f.rtt_p50, f.rtt_p90);
    }
  }
  return 0;
}
