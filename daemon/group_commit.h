#pragma once
// GroupCommitter: the store's single writer. HTTP threads hand it new
// operations and the tracker hands it events; its thread applies everything
// that is waiting in one transaction, commits, and only then wakes the
// callers, notifies the ChangeHub and hands new commands to the dispatcher.
// So a 202 is sent only after its own commit, without a transaction per
// request.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon/store.h"
#include "shared/envelope.h"
#include "shared/result.h"

namespace asyncops {

class GroupCommitter {
 public:
  struct Hooks {
    // Both run on the commit thread right after a commit, in this order.
    std::function<void(const std::vector<Change>&)> on_changes;
    std::function<void(std::vector<Command>)> on_accepted;
  };
  struct Counters {
    std::atomic<uint64_t> commits{0};
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> events_applied{0};
    std::atomic<uint64_t> events_unknown{0};  // no such operation: counted and logged
    std::atomic<uint64_t> events_ignored{0};  // stale or duplicate (e.g. after terminal)
    std::atomic<uint64_t> commit_failures{0};
  };

  GroupCommitter(std::unique_ptr<StoreWriter> writer, Hooks hooks, size_t max_batch = 1024);
  ~GroupCommitter();  // stop()s

  void start();
  // Applies what is queued, then joins the thread.
  void stop();

  // Blocks until op is committed, and returns its "accepted" change; an
  // error if the store could not commit. Thread-safe.
  Result<Change> accept(OperationRecord op);
  // Queues a worker's event; it is applied with the next commit. Thread-safe.
  void submit_event(Event e);
  // Queues the record that commands went to workers. Thread-safe.
  void submit_dispatched(std::vector<std::pair<std::string, int>> ids_and_attempts);

  const Counters& counters() const { return m_counters; }
  // Jobs waiting for the next commit.
  size_t queued() const;

 private:
  struct Job {
    enum Type { accept_op, apply_event, mark_dispatched } type = apply_event;
    bool is_accept = false;  // type == accept_op
    OperationRecord op;      // accept
    Event event;             // event; dispatched uses request_id and attempt
    std::promise<Result<Change>> done;  // accept
  };
  void run();
  void commit_batch(std::vector<Job>& batch);

  std::unique_ptr<StoreWriter> m_writer;  // owned by the commit thread once started
  Hooks m_hooks;
  const size_t m_max_batch;
  Counters m_counters;

  mutable std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<Job> m_queue;  // GUARDED_BY(m_mutex)
  bool m_stopping = false;   // GUARDED_BY(m_mutex)
  std::thread m_thread;
};

}  // namespace asyncops
