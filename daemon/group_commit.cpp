#include "daemon/group_commit.h"
#include "shared/timeline.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "daemon/daemon_events.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/named_thread.h"

namespace asyncops {

GroupCommitter::GroupCommitter(std::unique_ptr<StoreWriter> writer, Hooks hooks, size_t max_batch,
                               size_t max_others)
    : m_writer(std::move(writer)),
      m_hooks(std::move(hooks)),
      m_max_batch(max_batch < 1 ? 1 : max_batch),
      m_max_others(max_others < 1 ? 1 : max_others) {
  m_counters.unfinished = m_writer->count_unfinished();
}

GroupCommitter::~GroupCommitter() { stop(); }

void GroupCommitter::lead_when_idle(bool on) {
  MutexLock lock(&m_mutex);
  m_lead_when_idle = on;
}

void GroupCommitter::start() { m_thread = named_thread("aops-commit", [this] { run(); }); }

void GroupCommitter::stop() {
  {
    MutexLock lock(&m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
}

Result<Change> GroupCommitter::accept(OperationRecord op) {
  auto r = accept(std::move(op), IdempotencyKey{});
  if (!r) return Error{r.error()};
  return r->change;
}

namespace {
long futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

// Counts one more of a warning a worker may repeat for every event, and logs
// the first 10 and every 1000th after, with the count: bounded, never silent.
// fields() is called only for a line that is logged.
template <class Fields>
void count_and_warn(std::atomic<uint64_t>& counter, const char* warning, Fields fields) {
  uint64_t n = ++counter;
  if (n <= 10 || n % 1000 == 0) {
    LogFields f = fields();
    f.emplace_back("count", std::to_string(n));
    log_warn(warning, f);
  }
}
}  // namespace

Result<GroupCommitter::Accepted> GroupCommitter::Waiter::wait() {
  while (ready.load(std::memory_order_acquire) == 0) futex(&ready, FUTEX_WAIT_PRIVATE, 0);
  return std::move(*result);
}

void GroupCommitter::Waiter::set(Result<Accepted> r) {
  result = std::move(r);
  ready.store(1, std::memory_order_release);
  // The address only: after the store the waiter may already have returned.
  futex(&ready, FUTEX_WAKE_PRIVATE, 1);
}

template <class Fill>
bool GroupCommitter::enqueue(bool blocking, Fill&& fill, bool accepts) {
  bool wake;
  {
    MutexLock lock(&m_mutex);
    if (blocking && m_stopping) return false;
    fill(accepts ? m_accepts : m_queue);
    // Only an idle commit thread needs a wake-up (and only one: the first
    // job's); a busy one looks at the queue when its commit is done.
    wake = m_idle;
    m_idle = false;
  }
  if (wake) m_cv.notify_one();
  return true;
}

GroupCommitter::Job& GroupCommitter::add_accept_job(std::vector<Job>& queue, OperationRecord op,
                                                    const IdempotencyKey& key, OwnershipCheck owners,
                                                    std::vector<saga::StepPlan> plan) {
  // Filled in place: a Job is large (every kind's fields), and a temporary
  // would cost a whole move and destruction under the queue's lock.
  Job& job = queue.emplace_back();
  job.type = Job::accept_op;
  job.op.emplace(std::move(op));
  job.plan = std::move(plan);
  job.has_key = !key.key.empty();
  job.key = key;
  job.owners = std::move(owners);
  return job;
}

Result<GroupCommitter::Accepted> GroupCommitter::accept(OperationRecord op, const IdempotencyKey& key,
                                                        OwnershipCheck owners) {
  Waiter done;
  bool queued = enqueue(
      true, [&](std::vector<Job>& queue) { add_accept_job(queue, std::move(op), key, std::move(owners)).done = &done; },
      true);
  if (!queued) return Error{"the daemon is shutting down"};
  return done.wait();
}

bool GroupCommitter::accept_async(OperationRecord op, const IdempotencyKey& key, OwnershipCheck owners,
                                  AcceptDone done, std::vector<saga::StepPlan> plan) {
  // LevelDB's write path: when the commit thread has waited for work a
  // while and nothing is queued, the caller commits its own accept at once.
  // At a low rate this saves a wake-up of the commit thread, and its answer,
  // on every accept: on a 2-vCPU guest each such hand-off costs 0.1-0.6 ms
  // (bench/RESULTS.md). A busy writer, anything queued, or a writer idle
  // only since a moment ago (under load, when others' accepts are on their
  // way and would wait for a batch of one), and the accept queues as before.
  std::vector<Job> led;
  bool wake = false;
  {
    MutexLock lock(&m_mutex);
    if (m_stopping) return false;
    std::vector<Job>* queue = &m_accepts;
    if (plan.empty() && may_lead(k_lead_after_idle_ns)) {
      m_leading = true;  // the commit thread starts no batch until this one is done
      queue = &led;
    } else {
      wake = m_idle;
      m_idle = false;
    }
    add_accept_job(*queue, std::move(op), key, std::move(owners), std::move(plan)).callback = std::move(done);
  }
  hand_over(led, wake);
  return true;
}

bool GroupCommitter::may_lead(int64_t min_idle_ns) const {
  return m_lead_when_idle && m_idle && !m_leading && m_queue.empty() && m_accepts.empty() &&
         (min_idle_ns <= 0 || steady_ns() - m_idle_since >= min_idle_ns);
}

void GroupCommitter::hand_over(std::vector<Job>& led, bool wake) {
  if (led.empty()) {
    if (wake) m_cv.notify_one();
    return;
  }
  commit_batch(led);
  {
    MutexLock lock(&m_mutex);
    m_leading = false;
    m_idle_since = steady_ns();  // the writer was busy until now
    wake = !m_queue.empty() || !m_accepts.empty() || m_stopping;
  }
  // Whatever queued meanwhile is the commit thread's; it may have been woken
  // for it already and gone back to waiting while this batch ran.
  if (wake) m_cv.notify_one();
}

Status GroupCommitter::run(WriteFn fn) {
  Waiter done;
  bool queued = enqueue(true, [&](std::vector<Job>& queue) {
    Job& job = queue.emplace_back();
    job.type = Job::write;
    job.fn = std::move(fn);
    job.done = &done;
  });
  if (!queued) return Error{"the daemon is shutting down"};
  auto r = done.wait();
  if (!r) return Error{r.error()};
  return Status::success();
}

void GroupCommitter::enqueue_answered(Job job, WriteDone done) {
  // With a caller to answer, a stopping daemon queues nothing: nobody
  // would answer it after the last batch.
  bool answered = static_cast<bool>(done);
  bool queued = enqueue(answered, [&](std::vector<Job>& queue) {
    job.written = std::move(done);
    queue.push_back(std::move(job));
  });
  if (!queued) done(Error{"the daemon is shutting down"});
}

void GroupCommitter::run_async(WriteFn fn, WriteDone done) {
  Job job;
  job.type = Job::write;
  job.fn = std::move(fn);
  enqueue_answered(std::move(job), std::move(done));
}

void GroupCommitter::apply_cancel(CancelDecision decision, CancelDone done) {
  Job job;
  job.type = Job::cancel;
  job.decision = std::move(decision);
  enqueue_answered(std::move(job), std::move(done));
}

void GroupCommitter::cancel_saga(std::string op_id, CancelDone done) {
  Job job;
  job.type = Job::saga_cancel;
  job.decision.op_id = std::move(op_id);
  enqueue_answered(std::move(job), std::move(done));
}

void GroupCommitter::submit_step_gave_up(std::string request_id, int attempts) {
  enqueue(false, [&](std::vector<Job>& queue) {
    Job& job = queue.emplace_back();
    job.type = Job::step_gave_up;
    job.dispatched.op_id = std::move(request_id);
    job.dispatched.attempt = attempts;
  });
}

void GroupCommitter::submit_event(Event e, EventSender sender) {
  enqueue(false, [&](std::vector<Job>& queue) {
    Job& job = queue.emplace_back();
    job.event = std::move(e);
    job.sender = std::move(sender);
  });
}

size_t GroupCommitter::queued() const {
  MutexLock lock(&m_mutex);
  return m_accepts.size() + m_queue.size();
}

void GroupCommitter::submit_events(std::vector<Event>& events) {
  if (events.empty()) return;
  enqueue(false, [&](std::vector<Job>& queue) {
    for (Event& e : events) queue.emplace_back().event = std::move(e);
  });
  events.clear();
}

void GroupCommitter::commit_events(std::vector<ReceivedEvent>& events) {
  if (events.empty()) return;
  // As accept_async, but without the idle time first (group_commit.h).
  std::vector<Job> led;
  bool wake = false;
  {
    MutexLock lock(&m_mutex);
    bool lead = !m_stopping && events.size() <= m_max_others && may_lead(0);
    if (lead) {
      m_leading = true;  // the commit thread starts no batch until this one is done
    } else {
      wake = m_idle;
      m_idle = false;
    }
    std::vector<Job>& queue = lead ? led : m_queue;
    for (ReceivedEvent& e : events) {
      Job& job = queue.emplace_back();
      job.event = std::move(e.event);
      job.sender = std::move(e.sender);
    }
  }
  events.clear();
  hand_over(led, wake);
}

void GroupCommitter::submit_dispatched(std::vector<std::pair<std::string, int>> sent) {
  if (sent.empty()) return;
  enqueue(false, [&](std::vector<Job>& queue) {
    for (auto& [id, attempt] : sent) {
      Job& job = queue.emplace_back();
      job.type = Job::mark_dispatched;
      job.dispatched.op_id = std::move(id);
      job.dispatched.attempt = attempt;
    }
  });
}

void GroupCommitter::run() {
  std::vector<Job> batch;
  for (;;) {
    {
      MutexLock lock(&m_mutex);
      // Not while a caller commits its own accept (accept_async): one
      // batch at a time, in the order the jobs were queued.
      while ((m_queue.empty() && m_accepts.empty()) || m_leading) {
        if (m_stopping && !m_leading && m_queue.empty() && m_accepts.empty()) return;  // everything is applied
        if (!m_leading) m_idle_since = steady_ns();
        m_idle = true;
        m_cv.wait(&m_mutex);
        m_idle = false;
      }
      // Everything that queued while the previous commit ran (or the one job
      // that woke an idle thread), at once: no waiting for company. New
      // operations first, then at most max_others of the rest: a burst of
      // events (a backlog reaching the workers) would otherwise make every
      // batch a long one, and a 202 waits for the batch in progress and
      // then for its own (bench/sse phase C).
      auto take = [&](std::vector<Job>& from, size_t limit) {
        size_t n = std::min(from.size(), limit - batch.size());
        if (n == from.size() && batch.empty()) {
          batch.swap(from);
          return;
        }
        std::move(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n), std::back_inserter(batch));
        from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
      };
      take(m_accepts, m_max_batch);
      take(m_queue, batch.size() + m_max_others);  // so events progress whatever the intake
    }
    commit_batch(batch);
    batch.clear();
  }
}

void GroupCommitter::take_saga(StoreWriter::SagaApplied applied, int64_t now, BatchOutput& out) {
  for (Change& c : applied.changes) out.changes.push_back(std::move(c));
  for (std::string& id : applied.cancel) out.saga_cancels.push_back(std::move(id));
  for (Command& c : applied.commands) {
    // A step's command carries the data of every step before it; one over
    // the workers' limit would be refused by every worker, and redelivered
    // and settled forever. It is never sent: the step fails at once, in
    // this transaction, and the saga unwinds (docs/design/sagas.md §6).
    size_t bytes = encode(c).body.size();
    if (bytes <= k_max_command_bytes) {
      out.commands.push_back(std::move(c));
      continue;
    }
    log_warn("a saga step's command is over the command limit; the step fails",
             {{"id", c.id}, {"bytes", std::to_string(bytes)}, {"limit", std::to_string(k_max_command_bytes)}});
    take_saga(m_writer->apply_step_event(command_too_large(c.id, c.attempt, bytes), now), now, out);
  }
}

void GroupCommitter::apply_one_event(const Event& e, const EventSender& sender, int64_t now, BatchOutput& out) {
  Change c;
  StoreWriter::Applied applied;
  bool resource_refused = false;
  if (saga::parse_step_request_id(e.request_id)) {
    // A saga's step or compensation: the saga decides, in this transaction,
    // and what it dispatches next goes out after the commit.
    StoreWriter::SagaApplied s = m_writer->apply_step_event(e, now, sender);
    applied = s.applied;
    // A final outcome for a step that had already ended: this delivery is
    // over, and no change will say so to the dispatcher.
    if (applied == StoreWriter::Applied::ignored && is_terminal(e.state)) out.leases_ended.push_back(e.request_id);
    resource_refused = s.resource_refused;
    take_saga(std::move(s), now, out);
    if (applied == StoreWriter::Applied::changed) {
      m_counters.events_applied++;
    }
  } else {
    applied = m_writer->apply_event(e, now, &c, sender);
    if (applied == StoreWriter::Applied::changed) {
      m_counters.events_applied++;
      if (c.kind == HistoryKind::superseded) {
        log_warn("a worker's late outcome supersedes worker_timeout",
                 {{"id", c.op.id}, {"state", to_string(c.op.state)}, {"code", c.op.code}, {"worker", e.worker}});
      }
      out.changes.push_back(std::move(c));
    }
  }
  if (resource_refused) {
    // The step and its saga completed (the effect happened); only the read
    // model was not written (docs/design/sagas.md §1).
    count_and_warn(m_counters.events_rejected, "a saga's last step names a resource its operation does not own", [&] {
      return LogFields{{"request_id", e.request_id}, {"resource", e.resource.substr(0, 200)}, {"worker", e.worker}};
    });
  }
  switch (applied) {
    case StoreWriter::Applied::changed:
      break;
    case StoreWriter::Applied::unknown_operation:
      count_and_warn(m_counters.events_unknown, "event for an unknown operation", [&] {
        return LogFields{{"request_id", e.request_id}, {"type", e.type}, {"worker", e.worker}};
      });
      break;
    case StoreWriter::Applied::ignored:
      m_counters.events_ignored++;
      break;
    case StoreWriter::Applied::late: {
      // Loud, but bounded: at most 5 lines a second, like refusals.
      uint64_t n = ++m_counters.events_late;
      int64_t second = now / 1000;
      if (second != m_late_log_second) {
        m_late_log_second = second;
        m_late_logs_this_second = 0;
      }
      if (++m_late_logs_this_second <= 5) {
        log_warn("a late outcome: its attempt had lost the lease, and another attempt ended the operation",
                 {{"request_id", e.request_id}, {"state", to_string(e.state)}, {"code", e.code},
                  {"attempt", std::to_string(e.attempt)}, {"operation_attempt", std::to_string(c.op.attempt)},
                  {"worker", e.worker}, {"count", std::to_string(n)}});
      }
      out.changes.push_back(std::move(c));
      break;
    }
    case StoreWriter::Applied::rejected:
      count_and_warn(m_counters.events_rejected, "event rejected: it names a resource its operation does not own",
                     [&] {
                       return LogFields{{"request_id", e.request_id},
                                        {"resource", e.resource.substr(0, 200)},
                                        {"worker", e.worker}};
                     });
      break;
  }
}

void GroupCommitter::commit_batch(std::vector<Job>& batch) {
  BatchOutput out;
  std::vector<Accepted> results(batch.size());
  int64_t now = now_ms();
  try {
    m_writer->begin();
    for (size_t i = 0; i < batch.size(); ++i) {
      Job& job = batch[i];
      Change c;
      switch (job.type) {
        case Job::accept_op: {
          if (!job.owners.paths.empty() && !m_writer->owners_allow(job.op->owner, job.owners)) {
            results[i].not_found = true;
            break;
          }
          StoreWriter::StoredTexts texts;
          auto inserted = m_writer->insert_operation(&*job.op, job.has_key ? &job.key : nullptr, &texts);
          if (auto* first = std::get_if<IdempotentReplay>(&inserted)) {
            results[i].replay = true;
            results[i].replay_op_id = std::move(first->op_id);
            results[i].replay_hash = std::move(first->request_hash);
            break;
          }
          c = std::move(std::get<Change>(inserted));
          if (!job.owners.claim.empty()) m_writer->claim_resource(job.owners.claim, c.op.owner, c.op.seq);
          ++out.new_operations;
          if (job.plan.empty()) {
            // The command takes the params and payload: nothing after the
            // commit reads them from the change.
            Command& cmd = out.commands.emplace_back(take_command(c.op));
            cmd.params_text = std::move(texts.params);
            cmd.payload_text = std::move(texts.payload);
            results[i].change = c;
            out.changes.push_back(std::move(c));
            break;
          }
          // A saga: its rows and its first step, in this transaction. The
          // step's command is built from the operation's params and payload.
          StoreWriter::SagaApplied started = m_writer->start_saga(c.op, job.plan, now);
          c.op.params = nlohmann::json::object();
          c.op.payload = nlohmann::json::object();
          c.op.step_count = static_cast<int>(job.plan.size());
          if (!started.changes.empty()) c.op.steps = started.changes.back().op.steps;
          results[i].change = c;
          out.changes.push_back(std::move(c));
          take_saga(std::move(started), now, out);
          break;
        }
        case Job::write:
          job.fn(*m_writer, out.changes);
          break;
        case Job::cancel: {
          const CancelDecision& d = job.decision;
          if (saga::parse_step_request_id(d.op_id)) {
            // A saga's step: its saga holds the cancel already; a step taken
            // back before any worker saw it ends canceled, which unwinds it.
            if (d.kind == CancelDecision::Kind::taken_back) {
              apply_one_event(canceled_before_dispatch(d.op_id, d.command), {}, now, out);
            }
            break;
          }
          if (m_writer->request_cancel(d.op_id, now, &c) == StoreWriter::Applied::changed) {
            out.changes.push_back(std::move(c));
          }
          if (d.kind == CancelDecision::Kind::taken_back) {
            Change ended;
            if (m_writer->apply_event(canceled_before_dispatch(d.op_id, d.command), now, &ended) ==
                StoreWriter::Applied::changed) {
              out.changes.push_back(std::move(ended));
            }
          }
          break;
        }
        case Job::saga_cancel:
          take_saga(m_writer->request_saga_cancel(job.decision.op_id, now), now, out);
          break;
        case Job::step_gave_up:
          take_saga(m_writer->apply_step_gave_up(job.dispatched.op_id, job.dispatched.attempt, now), now, out);
          break;
        case Job::mark_dispatched:
          if (m_writer->apply_dispatched(job.dispatched.op_id, job.dispatched.attempt, now, &c) ==
              StoreWriter::Applied::changed) {
            out.changes.push_back(std::move(c));
          }
          break;
        case Job::apply_event:
          apply_one_event(job.event, job.sender, now, out);
          break;
      }
    }
    m_writer->commit();
    if (timeline_on()) {
      for (size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].type == Job::accept_op && !results[i].change.op.id.empty()) {
          timeline_mark("accept_committed", results[i].change.op.id);
        }
        if (batch[i].type == Job::apply_event) {
          timeline_mark(batch[i].event.state == OpState::processing ? "processing_committed" : "outcome_committed",
                        batch[i].event.request_id);
        }
      }
    }
  } catch (const std::exception& e) {
    m_writer->rollback();
    m_counters.commit_failures++;
    if (m_hooks.after_commit) m_hooks.after_commit(&e);
    log_error("store commit failed; the batch is answered with errors",
              {{"error", e.what()}, {"batch", std::to_string(batch.size())}});
    for (Job& job : batch) {
      if (job.done) job.done->set(Error{std::string("store error: ") + e.what()});
      if (job.callback) job.callback(Error{std::string("store error: ") + e.what()});
      if (job.written) job.written(Error{std::string("store error: ") + e.what()});
    }
    return;
  }
  m_counters.commits++;
  if (m_hooks.after_commit) m_hooks.after_commit(nullptr);
  m_counters.accepted += static_cast<uint64_t>(out.new_operations);
  int64_t delta = out.new_operations;
  for (const Change& c : out.changes) {
    if (ends_operation(c)) --delta;
  }
  m_counters.unfinished += delta;
  if (m_hooks.on_changes) m_hooks.on_changes(out.changes);
  if (m_hooks.on_accepted && !out.commands.empty()) m_hooks.on_accepted(std::move(out.commands));
  for (size_t i = 0; i < batch.size(); ++i) {
    if (batch[i].done) batch[i].done->set(std::move(results[i]));
    if (batch[i].callback) batch[i].callback(std::move(results[i]));
    if (batch[i].written) batch[i].written(Status::success());
  }
  if (m_hooks.on_published) m_hooks.on_published(out.changes);
  if (m_hooks.on_saga_cancel && !out.saga_cancels.empty()) m_hooks.on_saga_cancel(std::move(out.saga_cancels));
  if (m_hooks.on_leases_ended && !out.leases_ended.empty()) m_hooks.on_leases_ended(std::move(out.leases_ended));
}

}  // namespace asyncops
