#pragma once
// The signal set-up of a program whose main thread waits for SIGINT and
// SIGTERM with sigwait() (asyncopsd, the bench ceiling server). Header only,
// so that a bench server that links nothing of the project can use it too.
#include <pthread.h>
#include <signal.h>

namespace asyncops {

// Blocks SIGINT and SIGTERM in the calling thread and so in every thread it
// starts after (they inherit the mask): only sigwait() on the returned set
// takes them. Ignores SIGPIPE: a write to a closed socket fails instead of
// ending the process. Call before any thread starts.
inline sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

}  // namespace asyncops
