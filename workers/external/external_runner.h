#pragma once
// Runs the commands of an external service (exec, http) on a pool of
// `concurrency` threads, with one effect per request id as for a built-in
// service (docs/protocol.md §9):
//
// - Before a run, the dedupe table (`handled` in DATA_DIR/<service>.db) is
//   read: a recorded outcome is re-published, and the handler is not run.
// - A canceled or fenced command that has no outcome records canceled or
//   failed/worker_timeout without running.
// - Every run of the handler starts before the command's start_before, the
//   end of the window its granted claim holds the lease for (docs/protocol.md
//   §4a: claim sent + lease_ms, on this host's monotonic clock). A command
//   taken from the queue after that is not run: nothing is recorded, and the
//   daemon redelivers it.
// - A failed attempt (RunResult::retry) runs again after a backoff
//   (doubling from `backoff`, at most 60 s, or the upstream's Retry-After if
//   longer, at most 10 min), `attempts` runs in all; then the command ends
//   failed with the last attempt's code and message. A retry is a new start,
//   so it too must start before start_before: one that cannot is not made,
//   nothing is recorded, and the daemon's redelivery (a new attempt, a new
//   claim, a new window) runs the command again, with `attempts` runs of its
//   own. The worker's heartbeats name the command all the while, so its
//   lease holds while it runs.
// - The outcome is recorded under the request id (in a transaction of its
//   own: the effect is outside the database) unless another is recorded
//   already, which then stands and is published instead. Only a fence
//   recorded meanwhile gives way: the work was done, and its outcome
//   supersedes the daemon's give-up (§8).
// - A cancel stops a running handler; the command ends canceled, since no
//   outcome was recorded. A worker that stops records nothing for what it
//   stopped, which is then redelivered.
//
// Owned by the worker loop's thread: every method is called from it.
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "shared/mutex.h"
#include "workers/external/handler.h"

namespace asyncops {

struct ExternalOptions {
  int concurrency = 1;                       // commands at once in this worker
  int attempts = 3;                          // runs of one delivery before it fails
  std::chrono::milliseconds timeout{30000};  // of one run
  std::chrono::milliseconds backoff{1000};   // before the second run; doubles
};

inline constexpr std::chrono::milliseconds k_max_backoff{60000};
inline constexpr std::chrono::milliseconds k_max_retry_after{600000};

class ExternalRunner {
 public:
  // Opens one connection to db_path per thread (the database must exist,
  // with Worker::init_database done).
  ExternalRunner(std::string service_name, std::shared_ptr<ExternalHandler> handler, ExternalOptions options,
                 std::string db_path, std::string worker_id);
  // Stops every run (nothing recorded for them) and joins the threads.
  ~ExternalRunner();
  ExternalRunner(const ExternalRunner&) = delete;
  ExternalRunner& operator=(const ExternalRunner&) = delete;

  // Slots free for start().
  size_t free_slots() const;
  // Commands in hand (queued or running), for heartbeats.
  std::vector<std::string> in_hand() const;
  // Takes cmd, granted by the daemon (its claim). canceled and fenced:
  // notices heard before it came. start_before: the end of the grant's
  // window; no run of the handler starts at or after it. Returns false (and
  // takes nothing) if this worker already has that request in hand: the run
  // under way will publish its outcome.
  // Should be called only while free_slots() > 0: more waits in the queue,
  // and what waits past start_before is dropped.
  bool start(Command cmd, bool canceled, bool fenced, std::chrono::steady_clock::time_point start_before);
  // A cancel notice: stops the run of request_id if it is in hand.
  void cancel(const std::string& request_id);

  struct Finished {
    std::string request_id;
    std::optional<Event> event;  // empty: nothing recorded (left to redelivery)
  };
  // What ended since the last call; those requests are no longer in hand.
  std::vector<Finished> take_finished();

 private:
  struct Job {
    Command cmd;
    bool canceled = false;
    bool fenced = false;
    std::chrono::steady_clock::time_point start_before;
    std::shared_ptr<CancelToken> token;
  };
  void thread_main();
  std::optional<Event> process(const Job& job, class ServiceDb& db);
  bool stopping() const;

  std::string m_service;
  std::shared_ptr<ExternalHandler> m_handler;
  ExternalOptions m_options;
  std::string m_db_path;
  std::string m_worker_id;

  mutable Mutex m_mutex;
  CondVar m_work;  // signalled when m_queue grows or m_stopping is set
  bool m_stopping GUARDED_BY(m_mutex) = false;
  std::deque<Job> m_queue GUARDED_BY(m_mutex);
  std::map<std::string, std::shared_ptr<CancelToken>> m_hand GUARDED_BY(m_mutex);  // queued or running
  std::vector<Finished> m_finished GUARDED_BY(m_mutex);
  std::vector<std::thread> m_threads;  // started by the constructor, joined by the destructor
};

}  // namespace asyncops

namespace asyncops {

// What Service::external holds: the handler and how the runner runs it.
struct ExternalService {
  std::shared_ptr<ExternalHandler> handler;
  ExternalOptions options;
};

}  // namespace asyncops
