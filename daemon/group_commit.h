#pragma once
// GroupCommitter: the store's single writer. HTTP threads hand it new
// operations and the tracker hands it events; its thread applies everything
// that is waiting in one transaction, commits, and only then wakes the
// callers, notifies the ChangeHub and hands new commands to the dispatcher.
// So a 202 is sent only after its own commit, without a transaction per
// request.
//
// Batching follows LevelDB's write path (DBImpl::Write and its writers_
// deque), with the commit thread as the permanent leader: it never waits
// for company. When it is idle, the first job wakes it and commits at once,
// alone; while a commit runs, new jobs queue, and the next batch is
// everything that queued meanwhile (up to max_batch). So an idle system
// adds no delay, and under load batches grow by themselves with the time
// a commit takes. New operations are taken first, and the other jobs (a
// burst of events) at most max_others per batch: a 202 waits for at most
// one short batch and then its own. A caller that finds the commit thread
// idle may commit its own batch instead of waking it (lead_when_idle): an
// I/O thread its accept, the tracker its events.
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <memory>
#include <thread>
#include <vector>

#include "daemon/cancel.h"
#include "store/store.h"
#include "shared/envelope.h"
#include "shared/mutex.h"
#include "shared/result.h"

namespace asyncops {

class GroupCommitter {
 public:
  // "The commit thread" below is the thread that ran the batch: the commit
  // thread, or the caller of accept_async or commit_events when it led its
  // own batch (an I/O thread, the tracker). Hooks must
  // not block, and must not call back into the committer's blocking calls.
  struct Hooks {
    // Both run on the commit thread right after a commit, in this order,
    // before the callers are answered: the dispatcher hears of a commit
    // first, since a new command's send is on every operation's way.
    std::function<void(const std::vector<Change>&)> on_changes;
    // New operations' commands, and the commands a saga's progress made
    // (its next step, a settle, a compensation): to the dispatcher.
    std::function<void(std::vector<Command>)> on_accepted;
    // Runs on the commit thread after every commit attempt, before the
    // callers are answered: null when it succeeded, else what it threw
    // (the daemon's readiness follows it, see daemon/store_health.h).
    std::function<void(const std::exception* failure)> after_commit = nullptr;
    // Runs on the commit thread after on_published: a saga's cancel
    // committed, with the request ids of its forward steps in flight, each
    // for the dispatcher's cancel decision (daemon/cancel.h).
    std::function<void(std::vector<std::string>)> on_saga_cancel = nullptr;
    // Runs last: request ids whose worker reported a final outcome that
    // changed nothing because its saga step or compensation had already
    // ended (a settle that raced the step's own outcome, or a resend after a
    // restart). Whatever lease the dispatcher still holds on them must end:
    // nothing else will end it, and a settle would be sent for ever.
    std::function<void(std::vector<std::string>)> on_leases_ended = nullptr;
    // Runs on the commit thread after the callers are answered, before
    // on_saga_cancel: the changes again, for the clients (the ChangeHub).
    // Its fan-out to waiters and streams never delays a command's send.
    std::function<void(const std::vector<Change>&)> on_published = nullptr;
  };
  struct Counters {
    std::atomic<uint64_t> commits{0};
    std::atomic<uint64_t> accepted{0};
    std::atomic<uint64_t> events_applied{0};
    std::atomic<uint64_t> events_unknown{0};  // no such operation: counted and logged
    std::atomic<uint64_t> events_rejected{0};  // not allowed for its operation: counted and logged
    std::atomic<uint64_t> events_ignored{0};  // stale or duplicate (e.g. after terminal)
    std::atomic<uint64_t> events_late{0};     // an outcome from an attempt that had lost its lease
    std::atomic<uint64_t> commit_failures{0};
    std::atomic<int64_t> unfinished{0};  // operations not yet terminal: the backlog
  };

  // What accept() did: stored a new operation, found the idempotency key
  // already used (replay: nothing was written), or found that the caller
  // does not own a resource it commands (not_found: nothing was written).
  struct Accepted {
    Change change;
    bool replay = false;
    bool not_found = false;
    std::string replay_op_id;
    std::string replay_hash;
  };
  // A write run on the commit thread inside the next batch's transaction;
  // it appends the changes it makes, which are published after the commit.
  using WriteFn = std::function<void(StoreWriter&, std::vector<Change>&)>;
  // Told on the commit thread whether a write was committed.
  using WriteDone = std::function<void(Status committed)>;
  // A worker's event as the tracker received it: the event, and what the
  // daemon knows of its sender (not on the wire).
  struct ReceivedEvent {
    Event event;
    EventSender sender;
  };

  // max_batch: most new operations in one transaction; max_others: most
  // jobs of every other kind (events above all). What is left goes in the
  // next transaction, which starts right after. New operations go first,
  // and a batch of events stays short while a backlog of them drains:
  // SQLite's inserts per second level off near 100 per transaction, so
  // larger batches would save little.
  GroupCommitter(std::unique_ptr<StoreWriter> writer, Hooks hooks, size_t max_batch = 1024,
                 size_t max_others = 128);
  ~GroupCommitter();  // stop()s

  void start();
  // Applies what is queued, then joins the thread.
  void stop();
  // Whether a caller may commit its own batch when the commit thread is
  // idle and nothing is queued (LevelDB's leading writer): accept_async's
  // caller once the writer has been idle for k_lead_after_idle_ns, and
  // commit_events' caller (the tracker) at once. On by default. The daemon
  // turns it off with --sync full, where every commit waits for an fsync
  // that neither an I/O thread nor the tracker should wait for. Call
  // before start().
  void lead_when_idle(bool on);

  // Blocks until op is committed, and returns its "accepted" change; an
  // error if the store could not commit. Thread-safe.
  Result<Change> accept(OperationRecord op);
  // The same with an idempotency key, which is claimed in the same
  // transaction as the operation is stored, and an ownership check, made
  // in that transaction before anything is written (its claim is recorded
  // with the operation).
  Result<Accepted> accept(OperationRecord op, const IdempotencyKey& key, OwnershipCheck owners = {});
  // accept() for an event loop (issue 11): queues op and returns at once;
  // done runs on the commit thread once op is committed (or the commit
  // failed), and must only hand the result over (post it), not block.
  // Returns false, without calling done, when the daemon is stopping.
  // When the commit thread has been idle a while and nothing is queued,
  // the caller commits op itself (see lead_when_idle), unless op has
  // a plan: done then runs on the
  // caller's thread before accept_async returns, and so do the hooks.
  // With a plan (a saga route's steps, docs/design/sagas.md), the saga's
  // rows are written and its first step is dispatched in the same
  // transaction as the operation.
  using AcceptDone = std::function<void(Result<Accepted>)>;
  bool accept_async(OperationRecord op, const IdempotencyKey& key, OwnershipCheck owners, AcceptDone done,
                    std::vector<saga::StepPlan> plan = {});
  // Runs fn in the next batch and blocks until it is committed. Thread-safe.
  Status run(WriteFn fn);
  // Runs fn in the next batch without waiting. Thread-safe. done, if
  // given, is called exactly once: on the commit thread after the commit
  // (or its failure), or here with an error when the daemon is stopping
  // (then fn does not run). Like accept_async's, it must only hand the
  // result over, not block.
  void run_async(WriteFn fn, WriteDone done = nullptr);
  // Stores a cancel decision (daemon/cancel.h) in one write: marks the
  // operation cancel-requested and, for a command taken back before any
  // worker saw it, ends it canceled. For a saga step's request id, a step
  // taken back is applied to its saga as the step canceled (which unwinds
  // it); telling the workers writes nothing. done as for run_async.
  // Thread-safe.
  void apply_cancel(CancelDecision decision, CancelDone done);
  // A client's cancel of a saga operation (StoreWriter::request_saga_cancel),
  // in one write; the forward step in flight, if any, then goes to
  // Hooks::on_saga_cancel. done as for run_async. Thread-safe.
  void cancel_saga(std::string op_id, CancelDone done);
  // The dispatcher gave up on a saga's step or compensation request id
  // after `attempts` attempts (StoreWriter::apply_step_gave_up). Thread-safe.
  void submit_step_gave_up(std::string request_id, int attempts);
  // Queues a worker's event; it is applied with the next commit. Thread-safe.
  void submit_event(Event e, EventSender sender = {});
  // The same for several, under one lock (and empties events).
  void submit_events(std::vector<Event>& events);
  // The tracker's: queues a worker's events under one lock, as
  // submit_events does, except that when the commit thread is idle,
  // nothing is queued and there are at most max_others events, the caller
  // commits them itself, as one batch, and runs the hooks before it returns
  // (see lead_when_idle). Unlike accept_async's, this lead needs no idle
  // time first: one thread leading cannot split batches the way many I/O
  // threads would, and what queues while it commits is the commit thread's
  // next batch. Empties events. Thread-safe.
  void commit_events(std::vector<ReceivedEvent>& events);
  // Queues the record that commands went to workers. Thread-safe.
  void submit_dispatched(std::vector<std::pair<std::string, int>> ids_and_attempts);

  const Counters& counters() const { return m_counters; }
  // Thread-safe: asks the writer to checkpoint after its next commit
  // (StoreWriter::want_wal_restart; the Checkpointer's request).
  void want_wal_restart() { m_writer->want_wal_restart(); }
  // Jobs waiting for the next commit.
  size_t queued() const;

 private:
  // Where a blocked caller waits for its commit: on the caller's stack, so
  // that a request costs no shared-state allocation. The commit thread
  // writes the result, publishes it with one atomic store and wakes the
  // caller with one futex call; it never blocks on the caller, and it never
  // reads the waiter after the store (a wake on an address whose waiter
  // has already gone is harmless: waiters tolerate spurious wake-ups).
  struct Waiter {
    std::atomic<uint32_t> ready{0};
    std::optional<Result<Accepted>> result;  // written before ready = 1
    Result<Accepted> wait();
    void set(Result<Accepted> r);
  };
  // A command a worker was handed, to record in the history (or, for a
  // give-up, the one whose attempts ran out).
  struct Dispatched {
    std::string op_id;  // the request id: an operation's, or a saga step's
    int attempt = 1;
  };
  struct Job {
    enum Type { accept_op, apply_event, mark_dispatched, write, cancel, saga_cancel, step_gave_up } type = apply_event;
    std::optional<OperationRecord> op;  // accept (empty otherwise: events allocate nothing for it)
    std::vector<saga::StepPlan> plan;   // accept of a saga
    CancelDecision decision;            // cancel; saga_cancel: decision.op_id
    bool has_key = false;               // accept with an idempotency key
    IdempotencyKey key;
    OwnershipCheck owners;   // accept
    Event event;             // event
    EventSender sender;      // event
    Dispatched dispatched;   // dispatched; step_gave_up: the request id and the attempts made
    WriteFn fn;              // write
    Waiter* done = nullptr;  // accept and a blocking write
    AcceptDone callback;     // accept_async: called instead of done
    WriteDone written;       // run_async, cancel, saga_cancel: called instead of done
  };
  // Queues job with done as its answer (Job::written); on a stopping
  // daemon, queues nothing and answers done with an error at once.
  void enqueue_answered(Job job, WriteDone done);
  // Appends an accept job to queue (under m_mutex); the caller sets its
  // done or callback.
  static Job& add_accept_job(std::vector<Job>& queue, OperationRecord op, const IdempotencyKey& key,
                             OwnershipCheck owners, std::vector<saga::StepPlan> plan = {});
  // What one batch hands over after its commit.
  struct BatchOutput {
    std::vector<Change> changes;
    std::vector<Command> commands;
    std::vector<std::string> saga_cancels;
    std::vector<std::string> leases_ended;
    int64_t new_operations = 0;
  };
  // Applies a worker's (or the daemon's own) event, routing a saga step's
  // request id to the saga, and counts and logs what was not applied.
  void apply_one_event(const Event& e, const EventSender& sender, int64_t now, BatchOutput& out);
  // Takes what a saga method wrote and asks for; a command too large to
  // send fails its step instead (in the same transaction).
  void take_saga(StoreWriter::SagaApplied applied, int64_t now, BatchOutput& out);
  void run();
  void commit_batch(std::vector<Job>& batch);
  // Under m_mutex: whether a caller may commit its own batch now (see
  // lead_when_idle): leading is on, no other caller leads, nothing is
  // queued, and the commit thread waits for work, for at least min_idle_ns.
  bool may_lead(int64_t min_idle_ns) const REQUIRES(m_mutex);
  // After the caller's lock: commits led, the caller's own batch (it set
  // m_leading), and hands the writer back to the commit thread; or, with
  // led empty (the jobs were queued), wakes the commit thread if wake.
  void hand_over(std::vector<Job>& led, bool wake);
  // Runs fill(queue), which appends jobs to the queue, under m_mutex, then wakes the
  // commit thread if it is idle; a busy one takes the jobs with its next
  // batch. A blocking enqueue (a caller will wait on its job) on a stopping
  // daemon queues nothing and returns false: nobody would answer its caller.
  // accepts: fill appends to the new operations' queue, which the next
  // batch takes first.
  template <class Fill>
  bool enqueue(bool blocking, Fill&& fill, bool accepts = false);

  // Used by one batch at a time: the commit thread's, or a leading
  // accept_async caller's (m_leading).
  std::unique_ptr<StoreWriter> m_writer;
  Hooks m_hooks;
  const size_t m_max_batch;
  const size_t m_max_others;
  Counters m_counters;
  int64_t m_late_log_second = 0;  // owned by the committer thread: log rate limit
  int m_late_logs_this_second = 0;

  mutable Mutex m_mutex;
  CondVar m_cv;
  std::vector<Job> m_queue GUARDED_BY(m_mutex);    // in order: events, writes, cancels, ...
  std::vector<Job> m_accepts GUARDED_BY(m_mutex);  // new operations: ahead of m_queue
  bool m_stopping GUARDED_BY(m_mutex) = false;
  bool m_idle GUARDED_BY(m_mutex) = false;  // the commit thread waits for a first job
  // Whether a caller of accept_async or commit_events may commit its own
  // batch (off with --sync full: no I/O thread nor the tracker waits for an
  // fsync).
  bool m_lead_when_idle GUARDED_BY(m_mutex) = true;
  bool m_leading GUARDED_BY(m_mutex) = false;  // such a caller's batch is being committed
  // Since when the writer has had nothing to do (steady clock, ns): a caller
  // leads only after k_lead_after_idle_ns of it. At 200 operations a second
  // the writer idles for milliseconds between jobs; at saturation for
  // microseconds, and batches stay large (bench/RESULTS.md, session 36).
  int64_t m_idle_since GUARDED_BY(m_mutex) = 0;
  static constexpr int64_t k_lead_after_idle_ns = 500 * 1000;
  std::thread m_thread;
};

}  // namespace asyncops
