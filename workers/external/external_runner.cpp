#include "workers/external/external_runner.h"

#include <algorithm>

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/clock.h"
#include "shared/log.h"
#include "workers/service_db.h"

namespace asyncops {
namespace {

// The recorded outcome of request_id, if any. Throws if the database fails.
std::optional<Event> recorded(ServiceDb& db, const std::string& request_id, bool* unreadable) {
  SQLite::Statement& seen = db.prepare("SELECT event FROM handled WHERE request_id = ?");
  seen.bind(1, request_id);
  if (!seen.executeStep()) return std::nullopt;
  auto prior = decode_event(seen.getColumn(0).getString());
  seen.reset();
  if (!prior) {
    *unreadable = true;
    return std::nullopt;
  }
  return prior.value();
}

bool is_fence_record(const Event& e) { return e.state == OpState::failed && e.code == "worker_timeout"; }

}  // namespace

ExternalRunner::ExternalRunner(std::string service_name, std::shared_ptr<ExternalHandler> handler,
                               ExternalOptions options, std::string db_path, std::string worker_id)
    : m_service(std::move(service_name)),
      m_handler(std::move(handler)),
      m_options(options),
      m_db_path(std::move(db_path)),
      m_worker_id(std::move(worker_id)) {
  m_options.concurrency = std::max(1, m_options.concurrency);
  m_options.attempts = std::max(1, m_options.attempts);
  for (int i = 0; i < m_options.concurrency; ++i) m_threads.emplace_back([this] { thread_main(); });
}

ExternalRunner::~ExternalRunner() {
  {
    MutexLock lock(&m_mutex);
    m_stopping = true;
    for (auto& [id, token] : m_hand) token->cancel();
    m_work.notify_all();
  }
  for (auto& t : m_threads) t.join();
}

size_t ExternalRunner::free_slots() const {
  MutexLock lock(&m_mutex);
  size_t cap = static_cast<size_t>(m_options.concurrency);
  return m_hand.size() >= cap ? 0 : cap - m_hand.size();
}

std::vector<std::string> ExternalRunner::in_hand() const {
  MutexLock lock(&m_mutex);
  std::vector<std::string> ids;
  for (const auto& [id, token] : m_hand) ids.push_back(id);
  return ids;
}

bool ExternalRunner::start(Command cmd, bool canceled, bool fenced,
                           std::chrono::steady_clock::time_point start_before) {
  MutexLock lock(&m_mutex);
  if (m_hand.count(cmd.id)) return false;
  Job job;
  job.token = std::make_shared<CancelToken>();
  job.canceled = canceled;
  job.fenced = fenced;
  job.start_before = start_before;
  m_hand[cmd.id] = job.token;
  job.cmd = std::move(cmd);
  m_queue.push_back(std::move(job));
  m_work.notify_one();
  return true;
}

void ExternalRunner::cancel(const std::string& request_id) {
  MutexLock lock(&m_mutex);
  auto it = m_hand.find(request_id);
  if (it != m_hand.end()) it->second->cancel();
}

std::vector<ExternalRunner::Finished> ExternalRunner::take_finished() {
  MutexLock lock(&m_mutex);
  std::vector<Finished> out;
  out.swap(m_finished);
  return out;
}

void ExternalRunner::thread_main() {
  std::unique_ptr<SQLite::Database> conn;
  std::unique_ptr<ServiceDb> db;
  for (;;) {
    Job job;
    {
      MutexLock lock(&m_mutex);
      while (!m_stopping && m_queue.empty()) m_work.wait(&m_mutex);
      if (m_stopping) return;
      job = std::move(m_queue.front());
      m_queue.pop_front();
    }
    std::optional<Event> event;
    try {
      if (!conn) {
        conn = std::make_unique<SQLite::Database>(m_db_path, SQLite::OPEN_READWRITE);
        Worker::set_up_connection(*conn);
        db = std::make_unique<ServiceDb>(*conn);
      }
      event = process(job, *db);
    } catch (const std::exception& e) {
      // The database failed: nothing recorded, nothing published; the lease
      // runs out and the command comes again.
      log_error("handling failed; leaving it to redelivery", {{"request_id", job.cmd.id}, {"error", e.what()}});
      db.reset();
      conn.reset();
    }
    MutexLock lock(&m_mutex);
    m_hand.erase(job.cmd.id);
    m_finished.push_back({job.cmd.id, std::move(event)});
  }
}

std::optional<Event> ExternalRunner::process(const Job& job, ServiceDb& db) {
  const Command& cmd = job.cmd;
  auto republish = [&](Event e) {
    e.attempt = cmd.attempt;
    e.worker = m_worker_id;
    return e;
  };
  // Records outcome unless an outcome is recorded already (that one stands,
  // and is returned), or a fence is, and replace_fence: then the work was
  // done after the daemon gave up, and its outcome goes in instead.
  auto record = [&](const Outcome& outcome, bool replace_fence) -> std::optional<Event> {
    Outcome o = outcome;
    if (auto fits = check_outcome_limits(o, cmd, m_worker_id); !fits) {
      o = outcomes::failed(cmd, "outcome_too_large", "the handler's outcome is over the event limits: " + fits.error());
    }
    SQLite::Transaction tx(db.db(), SQLite::TransactionBehavior::IMMEDIATE);
    bool unreadable = false;
    std::optional<Event> prior = recorded(db, cmd.id, &unreadable);
    if (prior && !(replace_fence && is_fence_record(*prior))) {
      db.reset_all();
      return republish(*prior);
    }
    if (unreadable && !replace_fence) {
      db.reset_all();
      return make_outcome_event(outcomes::failed(cmd, "outcome_unreadable", "the outcome recorded for this request cannot be read"),
                                cmd, m_worker_id);
    }
    Event e = make_outcome_event(o, cmd, m_worker_id);
    Worker::record_outcome(db, e, Worker::Recording::replace);
    db.reset_all();
    tx.commit();
    return e;
  };

  {
    bool unreadable = false;
    std::optional<Event> prior = recorded(db, cmd.id, &unreadable);
    db.reset_all();
    if (prior) return republish(*prior);  // handled before: no second run
    if (unreadable) {
      log_error("the recorded outcome cannot be decoded", {{"request_id", cmd.id}});
      return make_outcome_event(outcomes::failed(cmd, "outcome_unreadable", "the outcome recorded for this request cannot be read"),
                                cmd, m_worker_id);
    }
  }
  if (job.fenced) return record(fenced_outcome(), false);
  if (job.canceled || cmd.cancel || job.token->canceled()) {
    if (stopping()) return std::nullopt;
    return record(Outcome::canceled(cmd.name + "_canceled", "canceled before it was handled"), false);
  }

  // Past the grant's window the lease may be another attempt's already
  // (docs/protocol.md §4a): not started, nothing recorded, redelivered.
  auto window_over = [&](std::chrono::milliseconds delay) {
    return std::chrono::steady_clock::now() + delay >= job.start_before;
  };
  if (window_over(std::chrono::milliseconds(0))) {
    log_warn("the grant's window ended before a slot was free; not started, left to redelivery",
             {{"request_id", cmd.id}});
    return std::nullopt;
  }

  Outcome outcome;
  RunContext ctx;
  ctx.service = m_service;
  ctx.timeout = m_options.timeout;
  ctx.cancel = job.token.get();
  for (int run = 1;; ++run) {
    ctx.run = run;
    RunResult r = m_handler->handle(cmd, ctx);
    if (stopping()) return std::nullopt;  // the worker stops: redelivery runs it again
    if (r.kind == RunResult::Kind::aborted) {
      outcome = Outcome::canceled(cmd.name + "_canceled", "canceled while it ran: the handler was stopped");
      break;
    }
    if (r.kind == RunResult::Kind::outcome) {
      outcome = std::move(r.outcome);
      break;
    }
    if (run >= m_options.attempts) {
      std::string message = r.message + " (attempt " + std::to_string(run) + " of " +
                            std::to_string(m_options.attempts) + ")";
      if (message.size() > k_max_message_bytes - 4) message = "…" + message.substr(message.size() - (k_max_message_bytes - 8));
      outcome = outcomes::failed(cmd, r.code, message);
      break;
    }
    std::chrono::milliseconds delay(std::min<int64_t>(k_max_backoff.count(),
                                                      m_options.backoff.count() << std::min(run - 1, 20)));
    if (r.retry_after_ms >= 0) {
      delay = std::max(delay, std::min(k_max_retry_after, std::chrono::milliseconds(r.retry_after_ms)));
    }
    if (window_over(delay)) {
      // A retry after the window would start without a lease that is
      // surely ours: leave it to the daemon's redelivery instead.
      log_info("a handler attempt failed; its retry would start after the grant's window, so it is left to "
               "redelivery",
               {{"request_id", cmd.id}, {"code", r.code}, {"message", clean_text(r.message.substr(0, 512))}});
      return std::nullopt;
    }
    log_info("a handler attempt failed; trying again",
             {{"request_id", cmd.id}, {"code", r.code}, {"delay_ms", std::to_string(delay.count())},
              {"message", clean_text(r.message.substr(0, 512))}});
    if (job.token->wait_for(delay)) {
      if (stopping()) return std::nullopt;
      outcome = Outcome::canceled(cmd.name + "_canceled", "canceled while it waited to be tried again");
      break;
    }
  }
  return record(outcome, true);
}

bool ExternalRunner::stopping() const {
  MutexLock lock(&m_mutex);
  return m_stopping;
}

}  // namespace asyncops
