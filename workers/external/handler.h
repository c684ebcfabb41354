#pragma once
// A service whose handlers live outside the worker (issue 13): a program per
// command (exec), one long-lived program (exec, lines = true) or an HTTP
// upstream (http). The worker runs them through this interface only:
// `handle(command, context) -> RunResult`. What a run comes to is recorded
// and published by ExternalRunner (workers/external_runner.h), which also
// owns concurrency, retries and the dedupe table, so that a handler knows
// nothing of ZeroMQ or SQLite.
#include <chrono>
#include <string>
#include <string_view>

#include "shared/envelope.h"
#include "shared/mutex.h"
#include "workers/worker.h"

namespace asyncops {

// Set once, by another thread, to stop a run: a cancel notice, or the
// worker stopping. A handler polls canceled() or waits with wait_for().
class CancelToken {
 public:
  void cancel() {
    MutexLock lock(&m_mutex);
    m_canceled = true;
    m_cv.notify_all();
  }
  bool canceled() const {
    MutexLock lock(&m_mutex);
    return m_canceled;
  }
  // Waits up to d; true if canceled (at once, or meanwhile).
  bool wait_for(std::chrono::milliseconds d) const {
    auto deadline = std::chrono::steady_clock::now() + d;
    MutexLock lock(&m_mutex);
    while (!m_canceled) {
      if (!m_cv.wait_until(&m_mutex, deadline)) return m_canceled;
    }
    return true;
  }

 private:
  mutable Mutex m_mutex;
  mutable CondVar m_cv;  // signalled when m_canceled is set
  bool m_canceled GUARDED_BY(m_mutex) = false;
};

// What one run of a handler came to.
struct RunResult {
  enum class Kind {
    outcome,  // completed, rejected or failed for good: record it
    retry,    // a failed attempt (crash, timeout, 5xx, EX_TEMPFAIL): run again later, or fail
    aborted,  // stopped by its CancelToken: what it did is unknown
  };
  Kind kind = Kind::outcome;
  Outcome outcome;                // kind == outcome
  std::string code;               // kind == retry: the failed code if it was the last attempt
  std::string message;            // kind == retry: why, e.g. the tail of stderr
  int64_t retry_after_ms = -1;    // kind == retry: the upstream's Retry-After, -1 for none

  static RunResult done(Outcome o) {
    RunResult r;
    r.outcome = std::move(o);
    return r;
  }
  static RunResult again(std::string code, std::string message, int64_t retry_after_ms = -1) {
    RunResult r;
    r.kind = Kind::retry;
    r.code = std::move(code);
    r.message = std::move(message);
    r.retry_after_ms = retry_after_ms;
    return r;
  }
  static RunResult stopped() {
    RunResult r;
    r.kind = Kind::aborted;
    return r;
  }
};

struct RunContext {
  std::string service;                       // the service's name
  int run = 1;                               // which run of this command in this worker, from 1
  std::chrono::milliseconds timeout{30000};  // the run is stopped after this long
  const CancelToken* cancel = nullptr;       // never null while handle() runs
};

class ExternalHandler {
 public:
  virtual ~ExternalHandler() = default;
  // Runs cmd once. Blocks until the run ends, its timeout passes (then it
  // returns a retry with code handler_timeout or upstream_timeout) or its
  // token is canceled (then it returns stopped() promptly, a second or so at
  // most). Called from several threads at once (up to the service's
  // concurrency): an implementation keeps per-run state on the stack.
  virtual RunResult handle(const Command& cmd, const RunContext& ctx) = 0;
  // "exec" or "http".
  virtual const char* kind() const = 0;
};

// The outcome conventions shared by the exec and http kinds.
namespace outcomes {
// The path a completed outcome names: the command's resource, or for one
// with none (a DELETE route) the path of its origin ("DELETE /orders/7").
std::string resource_of(const Command& cmd);
// completed with data (an object, or null for none), or removed when
// data is {"deleted": true}.
Outcome completed(const Command& cmd, nlohmann::json data);
Outcome rejected(const Command& cmd, std::string code, std::string message);
Outcome failed(const Command& cmd, std::string code, std::string message);
}  // namespace outcomes

// text as valid UTF-8 (each byte of a bad sequence becomes U+FFFD) without
// control characters other than newline and tab: program output made fit
// for an event's message.
std::string clean_text(std::string_view text);

}  // namespace asyncops
