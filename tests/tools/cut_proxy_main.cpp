// cut_proxy: TCP proxies that can cut their links without closing them
// (tests/tools/tcp_proxy.h), for bench/cut.
//
//   cut_proxy LISTEN_PORT:TARGET_HOST:TARGET_PORT ...
//
// Prints "ready" once every proxy listens. SIGUSR1 cuts every link, SIGUSR2
// restores them; SIGTERM or SIGINT stops. Each change is printed with a
// monotonic timestamp in ms.
#include <signal.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tests/tools/tcp_proxy.h"

int main(int argc, char** argv) {
  using asyncops::test::TcpProxy;
  std::vector<std::unique_ptr<TcpProxy>> proxies;
  for (int i = 1; i < argc; ++i) {
    std::string spec = argv[i];
    size_t c1 = spec.find(':'), c2 = spec.rfind(':');
    if (c1 == std::string::npos || c2 == c1) {
      std::fprintf(stderr, "cut_proxy: expected LISTEN_PORT:TARGET_HOST:TARGET_PORT, got %s\n", argv[i]);
      return 2;
    }
    auto p = std::make_unique<TcpProxy>(spec.substr(c1 + 1, c2 - c1 - 1), std::atoi(spec.substr(c2 + 1).c_str()),
                                        std::atoi(spec.substr(0, c1).c_str()));
    if (auto started = p->start(); !started) {
      std::fprintf(stderr, "cut_proxy: %s: %s\n", spec.c_str(), started.error().c_str());
      return 1;
    }
    proxies.push_back(std::move(p));
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ms = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
    if (sig == SIGUSR1) {
      for (auto& p : proxies) p->cut();
      std::printf("cut %lld\n", ms);
    } else if (sig == SIGUSR2) {
      for (auto& p : proxies) p->restore();
      std::printf("restored %lld\n", ms);
    } else {
      break;
    }
    std::fflush(stdout);
  }
  return 0;
}
