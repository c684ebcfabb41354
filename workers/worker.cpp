#include "workers/worker.h"
#include "shared/timeline.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "shared/clock.h"
#include "shared/curve.h"
#include "shared/handshake_watch.h"
#include "shared/ids.h"
#include "shared/json_limits.h"
#include "shared/liveness.h"
#include "shared/log.h"
#include "shared/mutex.h"
#include "shared/paths.h"
#include "store/checkpointer.h"
#include "workers/external/external_runner.h"

namespace asyncops {

Outcome Outcome::completed(std::string type, std::string resource, nlohmann::json data) {
  Outcome o;
  o.state = OpState::completed;
  o.type = std::move(type);
  o.code = "success";
  o.resource = std::move(resource);
  o.data = std::move(data);
  return o;
}

Outcome Outcome::removed(std::string type, std::string resource) {
  Outcome o = completed(std::move(type), std::move(resource), nullptr);
  o.deleted = true;
  return o;
}

Outcome Outcome::rejected(std::string type, std::string code, std::string message) {
  Outcome o;
  o.state = OpState::rejected;
  o.type = std::move(type);
  o.code = std::move(code);
  o.message = std::move(message);
  return o;
}

Outcome Outcome::failed(std::string type, std::string code, std::string message) {
  Outcome o = rejected(std::move(type), std::move(code), std::move(message));
  o.state = OpState::failed;
  return o;
}

Outcome Outcome::canceled(std::string type, std::string message) {
  Outcome o = rejected(std::move(type), "canceled", std::move(message));
  o.state = OpState::canceled;
  return o;
}

namespace {

// Commands taken and handled together in one transaction.
constexpr size_t k_max_batch = 256;

// The send times of this many `ready` messages are kept. One goes out at
// least every heartbeat interval and at each credit change (two a batch), so
// a command naming an older one has waited long: it is claimed instead.
constexpr size_t k_ready_times = 1024;

}  // namespace

Event make_outcome_event(const Outcome& o, const Command& cmd, const std::string& worker_id) {
  Event e;
  e.request_id = cmd.id;
  e.type = o.type;
  e.state = o.state;
  e.code = o.code;
  e.message = o.message;
  // A long message (an exception's text) is cut, not refused: the limit
  // leaves 4 bytes for a character cut in two, which encodes as U+FFFD.
  if (e.message.size() > k_max_message_bytes - 4) e.message.resize(k_max_message_bytes - 4);
  e.resource = o.resource;
  e.data = o.data;
  e.deleted = o.deleted;
  e.version = o.version;
  e.worker = worker_id;
  e.attempt = cmd.attempt;
  e.time = format_rfc3339_ms(now_ms());
  return e;
}

// The depth is checked first, on o itself: copying or dumping a deep tree
// recurses per level.
Status check_outcome_limits(const Outcome& o, const Command& cmd, const std::string& worker_id) {
  if (!json_depth_within(o.data, k_max_message_depth - 1)) {
    return Error{"field 'data' nests more than " + std::to_string(k_max_message_depth - 1) + " levels deep"};
  }
  return check_event_limits(make_outcome_event(o, cmd, worker_id));
}

namespace {
// check_outcome_limits, keeping what it makes: when o fits, *e is its event
// and *body that event's encoding, which is recorded and published as it
// is. (o.data is moved into *e, not copied.)
Status outcome_fits(Outcome& o, const Command& cmd, const std::string& worker_id, Event* e, std::string* body) {
  // Moved, not copied: a move does not recurse, whatever the depth.
  nlohmann::json data = std::move(o.data);
  o.data = nullptr;
  *e = make_outcome_event(o, cmd, worker_id);
  e->data = std::move(data);
  return check_event_limits(*e, body);
}
}  // namespace

// What a worker records for a request the daemon gave up on (a fence).
Outcome fenced_outcome() {
  return Outcome::failed("worker_timeout", "worker_timeout",
                         "the daemon gave up on it (fence) before this worker ran it");
}

namespace {

void publish(zmq::socket_t& pub, const Frames& f) {
  std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
  zmq::send_multipart(pub, parts, zmq::send_flags::none);
}

std::string hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof buf - 1) != 0) return "localhost";
  return buf;
}

// The requests a worker is handling now: the main loop adds and clears
// them, the heartbeat thread reads them (their leases are renewed).
class RequestsInHand {
 public:
  void add(const std::vector<Command>& batch) {
    MutexLock lock(&m_mutex);
    for (const Command& c : batch) m_ids.push_back(c.id);
  }
  void clear() {
    MutexLock lock(&m_mutex);
    m_ids.clear();
  }
  // The first max of them.
  std::vector<std::string> first(size_t max) const {
    MutexLock lock(&m_mutex);
    return {m_ids.begin(), m_ids.begin() + static_cast<std::ptrdiff_t>(std::min(m_ids.size(), max))};
  }

 private:
  mutable Mutex m_mutex;
  std::vector<std::string> m_ids GUARDED_BY(m_mutex);
};

}  // namespace

Worker::Worker(WorkerOptions options, Service service)
    : m_options(std::move(options)), m_service(std::move(service)) {
  if (m_options.id.empty()) {
    m_options.id = hostname() + "/" + std::to_string(getpid()) + "/" + new_uuid_v7().substr(24);
  }
}

void Worker::set_up_connection(SQLite::Database& db) {
  db.setBusyTimeout(k_lock_wait_ms);
  db.exec("PRAGMA wal_autocheckpoint=" + std::to_string(4 * Worker::k_wal_limit_pages));
}

void Worker::init_database(const Service& service, SQLite::Database& db) {
  set_up_connection(db);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=NORMAL");
  db.exec(
      "CREATE TABLE IF NOT EXISTS handled("
      "request_id TEXT PRIMARY KEY, event TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID");
  if (service.init_schema) service.init_schema(db);
}

Event Worker::handle(const Service& service, SQLite::Database& db, const Command& cmd,
                     const std::string& worker_id, bool canceled) {
  ServiceDb sdb(db);
  return handle_batch(service, sdb, {cmd}, worker_id,
                      [canceled](const std::string&) { return canceled; })[0];
}

std::vector<Event> Worker::handle_batch(const Service& service, ServiceDb& db,
                                        const std::vector<Command>& cmds, const std::string& worker_id,
                                        const std::function<bool(const std::string&)>& is_canceled,
                                        const std::function<bool(const std::string&)>& is_fenced,
                                        std::optional<std::chrono::steady_clock::time_point> start_before,
                                        std::vector<std::string>* bodies) {
  std::vector<Event> out;
  out.reserve(cmds.size());
  std::vector<std::string> encoded;
  if (!bodies) bodies = &encoded;
  bodies->clear();
  bodies->reserve(cmds.size());
  size_t next = 0;
  while (next < cmds.size()) {
    size_t committed = out.size();
    try {
      // IMMEDIATE: take the write lock first, so that two workers sharing the
      // database cannot both see "not handled" for the same request.
      SQLite::Transaction tx(db.db(), SQLite::TransactionBehavior::IMMEDIATE);
      const size_t first = next;  // the transaction's first command, for the timeline
      timeline_mark("handling_begun", cmds[first].id);
      auto started = std::chrono::steady_clock::now();
      auto budget = std::chrono::milliseconds(k_transaction_budget_ms);
      do {
        // A command whose grant no longer holds is not started (nor
        // recorded): its lease may be another worker's by now.
        if (start_before && std::chrono::steady_clock::now() >= *start_before) {
          if (out.size() < cmds.size()) {
            log_warn("the grant ran out before these commands could start; not started",
                     {{"commands", std::to_string(cmds.size() - out.size())}});
          }
          db.reset_all();
          tx.commit();
          return out;
        }
        const Command& cmd = cmds[next++];
        out.push_back(handle_in_transaction(service, db, cmd, worker_id, is_canceled && is_canceled(cmd.id),
                                            is_fenced && is_fenced(cmd.id), &bodies->emplace_back()));
      } while (next < cmds.size() && std::chrono::steady_clock::now() - started < budget);
      timeline_mark("handled", cmds[first].id);
      db.reset_all();
      tx.commit();
      timeline_mark("handling_committed", cmds[first].id);
    } catch (const std::exception& e) {
      db.reset_all();
      if (committed == 0) throw;
      out.resize(committed);  // what committed stands; the rest comes again
      bodies->resize(committed);
      log_error("a transaction failed; its commands are left to redelivery",
                {{"commands", std::to_string(cmds.size() - committed)}, {"error", e.what()}});
      break;
    }
  }
  return out;
}

std::map<std::string, Event> Worker::recorded_outcomes(ServiceDb& db, const std::vector<Command>& cmds,
                                                       const std::string& worker_id) {
  std::map<std::string, Event> out;
  SQLite::Statement& seen = db.prepare("SELECT event FROM handled WHERE request_id = ?");
  for (const Command& cmd : cmds) {
    seen.reset();
    seen.bind(1, cmd.id);
    if (!seen.executeStep()) continue;
    auto prior = decode_event(seen.getColumn(0).getString());
    if (!prior) continue;  // unreadable: the claimed path reports it (outcome_unreadable)
    Event e = prior.value();
    e.attempt = cmd.attempt;
    e.worker = worker_id;
    out.emplace(cmd.id, std::move(e));
  }
  seen.reset();
  return out;
}

void Worker::record_fences(ServiceDb& db, const std::vector<std::string>& request_ids,
                           const std::string& worker_id) {
  if (request_ids.empty()) return;
  SQLite::Transaction tx(db.db(), SQLite::TransactionBehavior::IMMEDIATE);
  for (const std::string& id : request_ids) {
    Command cmd;
    cmd.id = id;
    // OR IGNORE: an outcome recorded first (the work was done) stands; the
    // daemon lets that outcome supersede its give-up.
    record_outcome(db, make_outcome_event(fenced_outcome(), cmd, worker_id), Recording::keep_first);
  }
  db.reset_all();
  tx.commit();
}

Event Worker::handle_in_transaction(const Service& service, ServiceDb& db, const Command& cmd,
                                    const std::string& worker_id, bool canceled, bool fenced, std::string* body) {
  {
    SQLite::Statement& seen = db.prepare("SELECT event FROM handled WHERE request_id = ?");
    seen.bindNoCopy(1, cmd.id);
    if (seen.executeStep()) {
      auto prior = decode_event(seen.getColumn(0).getString());
      seen.reset();
      if (prior) {
        Event e = prior.value();
        e.attempt = cmd.attempt;
        e.worker = worker_id;
        *body = encode(e).body;
        return e;  // handled before: the recorded outcome, and no second effect
      }
      // A record this worker cannot read back (written before the limits of
      // issue 15, or damaged): running the handler again could apply it a
      // second time, so end the operation failed and say why.
      log_error("the recorded outcome cannot be decoded", {{"request_id", cmd.id}, {"error", prior.error()}});
      Event e = make_outcome_event(Outcome::failed(cmd.name + "_failed", "outcome_unreadable",
                                         "the outcome recorded for this request cannot be read: " + prior.error()),
                         cmd, worker_id);
      *body = encode(e).body;
      return e;
    }
  }
  Outcome outcome;
  Event e;
  bool made = false;  // e and *body are the handler's outcome, checked
  auto it = service.handlers.find(cmd.name);
  if (fenced) {
    outcome = fenced_outcome();  // the daemon gave up on it: it must not run now
  } else if (canceled || cmd.cancel) {
    outcome = Outcome::canceled(cmd.name + "_canceled", "canceled before it was handled");
  } else if (it == service.handlers.end()) {
    outcome = Outcome::failed(cmd.name + "_failed", "unknown_command",
                              "service " + service.name + " has no handler for " + cmd.name);
  } else {
    try {
      db.prepare("SAVEPOINT handler").exec();
      outcome = it->second(cmd, db);
      db.reset_all();
      // An outcome the tracker would refuse (docs/protocol.md, "Limits") is
      // undone here and reported, instead of leaving the operation to time
      // out with its effect applied.
      if (auto fits = outcome_fits(outcome, cmd, worker_id, &e, body); !fits) {
        db.prepare("ROLLBACK TO handler").exec();
        outcome = Outcome::failed(cmd.name + "_failed", "outcome_too_large",
                                  "the handler's outcome is over the event limits: " + fits.error());
      } else {
        made = true;
      }
      db.prepare("RELEASE handler").exec();
    } catch (const std::exception& ex) {
      db.reset_all();
      db.prepare("ROLLBACK TO handler").exec();
      db.prepare("RELEASE handler").exec();
      outcome = Outcome::failed(cmd.name + "_failed", "handler_error", ex.what());
      made = false;
    }
  }
  if (!made) {
    e = make_outcome_event(outcome, cmd, worker_id);
    *body = encode(e).body;
  }
  record_outcome(db, e.request_id, *body, Recording::replace);
  return e;
}

void Worker::record_outcome(ServiceDb& db, const Event& e, Recording how) {
  record_outcome(db, e.request_id, encode(e).body, how);
}

void Worker::record_outcome(ServiceDb& db, const std::string& request_id, const std::string& body, Recording how) {
  SQLite::Statement& rec =
      db.prepare(how == Recording::replace ? "INSERT OR REPLACE INTO handled(request_id, event, at) VALUES (?,?,?)"
                                           : "INSERT OR IGNORE INTO handled(request_id, event, at) VALUES (?,?,?)");
  // No copies: both stay as they are until exec() returns.
  rec.bindNoCopy(1, request_id);
  rec.bindNoCopy(2, body);
  rec.bind(3, static_cast<int64_t>(now_ms()));
  rec.exec();
}

int Worker::run(const std::atomic<bool>& stop) {
  if (auto made = make_dirs(m_options.data_dir, 0700); !made) {
    log_error(made.error());
    return 1;
  }
  std::string db_path = m_options.data_dir + "/" + m_service.name + ".db";
  std::unique_ptr<SQLite::Database> db;
  // Workers that start together race to switch a new database to WAL, and
  // SQLite answers the loser "locked" without calling the busy handler: retry.
  for (int tries = 1;; ++tries) {
    try {
      db = std::make_unique<SQLite::Database>(db_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
      init_database(m_service, *db);
      break;
    } catch (const std::exception& e) {
      if (tries >= 50 || stop) {
        log_error("cannot open the service database", {{"path", db_path}, {"error", e.what()}});
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * tries));  // backoff before retry
    }
  }

  // The WAL is copied back on a thread of its own. When it has grown past
  // k_wal_limit_pages, this loop copies the rest between two batches, and
  // the next batch starts it from its beginning (store/checkpointer.h).
  std::atomic<bool> want_wal_restart{false};
  Checkpointer checkpointer(db_path, std::chrono::seconds(1), [&want_wal_restart] { want_wal_restart = true; },
                            Worker::k_wal_limit_pages);
  checkpointer.start();

  ServiceDb sdb(*db);  // destroyed before db: its statements go first
  // An external service (exec, http) runs its commands on the runner's
  // threads, outside this loop and any transaction (workers/external/).
  std::unique_ptr<ExternalRunner> runner;
  if (m_service.external) {
    runner = std::make_unique<ExternalRunner>(m_service.name, m_service.external->handler,
                                              m_service.external->options, db_path, m_options.id);
  }

  zmq::context_t ctx(1);
  // Owned by this thread: XPUB (events out), DEALER (commands in; ready and
  // claims out), SUB (cancels and fences in).
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  zmq::socket_t commands(ctx, zmq::socket_type::dealer);
  zmq::socket_t control(ctx, zmq::socket_type::sub);
  auto curve = [this](zmq::socket_t& s) {
    if (m_options.curve_server_key.empty()) return;
    make_curve_client(s, {m_options.curve_public_key, m_options.curve_secret_key}, m_options.curve_server_key);
  };
  // A refused handshake retries with backoff, up to 2 s apart.
  auto reconnect_backoff = [](zmq::socket_t& s) {
    s.set(zmq::sockopt::reconnect_ivl, 100);
    s.set(zmq::sockopt::reconnect_ivl_max, 2000);
  };
  try {
    curve(pub);
    curve(commands);
    curve(control);
    reconnect_backoff(pub);
    reconnect_backoff(commands);
    reconnect_backoff(control);
    apply_liveness(pub, m_options.events_endpoint, m_options.liveness);
    apply_liveness(commands, m_options.commands_endpoint, m_options.liveness);
    apply_liveness(control, m_options.control_endpoint, m_options.liveness);
    pub.set(zmq::sockopt::linger, 2000);  // flush outcomes on a clean exit
    pub.set(zmq::sockopt::sndhwm, 100000);
    commands.set(zmq::sockopt::linger, 0);
    // A ready or claim that cannot go to a live connection fails now
    // instead of waiting in a pipe that may die with the link.
    commands.set(zmq::sockopt::immediate, 1);
    commands.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(k_max_command_transport_bytes));
    control.set(zmq::sockopt::linger, 0);
    control.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(k_max_transport_bytes));
  } catch (const zmq::error_t& e) {
    log_error("cannot set up the sockets", {{"error", e.what()}});
    return 1;
  }
  // Declared after the sockets, so destroyed before them.
  HandshakeWatch events_watch(pub, "events", m_options.events_endpoint);
  HandshakeWatch commands_watch(commands, "commands", m_options.commands_endpoint);
  try {
    pub.connect(m_options.events_endpoint);
    if (!m_options.control_endpoint.empty()) {
      control.set(zmq::sockopt::subscribe, k_kind_cancel);
      control.set(zmq::sockopt::subscribe, k_kind_fence);
      control.connect(m_options.control_endpoint);
    }
  } catch (const zmq::error_t& e) {
    log_error("cannot connect", {{"events", m_options.events_endpoint}, {"error", e.what()}});
    return 1;
  }
  log_info("waiting for the tracker", {{"events", m_options.events_endpoint}});

  // Heartbeats come from their own thread and socket, so that they keep
  // going (and keep the lease of the command in hand) while a handler runs.
  RequestsInHand in_hand;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> hb_stop{false};
  std::thread heartbeats([&] {
    zmq::socket_t hb_pub(ctx, zmq::socket_type::pub);
    hb_pub.set(zmq::sockopt::linger, 0);
    curve(hb_pub);
    reconnect_backoff(hb_pub);
    apply_liveness(hb_pub, m_options.events_endpoint, m_options.liveness);
    hb_pub.connect(m_options.events_endpoint);
    Heartbeat hb;
    hb.worker = m_options.id;
    hb.service = m_service.name;
    hb.kind = m_service.kind;
    hb.host = hostname();
    hb.pid = getpid();
    while (!hb_stop && !stop) {
      hb.in_flight = in_flight;
      if (runner) {
        // The runner's commands, queued or running, all granted (below).
        hb.requests = runner->in_hand();
        hb.in_flight = static_cast<int64_t>(hb.requests.size());
      } else {
        // At most 256 (one batch), far below the cap; the cap is kept here too.
        hb.requests = in_hand.first(k_max_heartbeat_requests);
      }
      hb.time = format_rfc3339_ms(now_ms());
      try {
        publish(hb_pub, encode(hb));
      } catch (const zmq::error_t&) {
        // A heartbeat that cannot go out now is simply skipped.
      }
      for (int waited = 0; waited < m_options.heartbeat_ms && !hb_stop && !stop; waited += 50) {
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, m_options.heartbeat_ms)));
      }
    }
  });
  struct JoinOnExit {
    std::atomic<bool>& flag;
    std::thread& t;
    ~JoinOnExit() {
      flag = true;
      if (t.joinable()) t.join();
    }
  } join_heartbeats{hb_stop, heartbeats};

  // A PUB socket drops what it sends before the subscriber's subscription
  // arrives. So take no command until the tracker has subscribed (XPUB shows
  // the subscription), and only then connect the commands socket.
  bool subscribed = false, connected_commands = false;
  uint64_t bad_frames = 0;
  uint64_t started_without_claim = 0;  // batches' commands started on lease_floor, not a grant
  std::set<std::string> canceled;          // cancels heard of, bounded
  std::deque<std::string> canceled_order;
  std::set<std::string> fenced;            // fences heard of, bounded
  std::deque<std::string> fenced_order;
  std::vector<std::string> fences_to_record;  // heard, not yet in the database
  auto remember = [](std::set<std::string>& set, std::deque<std::string>& order, const std::string& id) {
    if (!set.insert(id).second) return false;
    order.push_back(id);
    if (order.size() > 100000) {
      set.erase(order.front());
      order.pop_front();
    }
    return true;
  };
  auto bad = [&bad_frames](const char* what, const std::string& error) {
    if (++bad_frames <= 10 || bad_frames % 1000 == 0) {
      log_warn(what, {{"error", error}, {"count", std::to_string(bad_frames)}});
    }
  };

  // Credit and claims (docs/protocol.md §4a).
  using SteadyClock = std::chrono::steady_clock;
  const int64_t idle_credit = static_cast<int64_t>(std::min<size_t>(k_max_batch, m_options.credit));
  int64_t credit = idle_credit;           // what this worker can start now
  SteadyClock::time_point ready_sent{};   // when `ready` last went out
  std::deque<Command> received;           // commands not yet in a claim
  std::vector<Command> claimed;           // the batch waiting for its grant
  SteadyClock::time_point claim_sent{};
  auto send_on_commands = [&commands](const Frames& f) {
    std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
    try {
      return zmq::send_multipart(commands, parts, zmq::send_flags::dontwait).has_value();
    } catch (const zmq::error_t&) {
      return false;
    }
  };
  // Each `ready` is numbered, and its number kept with the moment just
  // before it went out: a command that names it (ready_seq) had its lease
  // started after that moment (protocol §4a, "Starting without a claim").
  int64_t ready_seq = 0;
  std::map<int64_t, SteadyClock::time_point> ready_times;  // the last k_ready_times
  // The first seq sent on the current connection. A command naming an
  // earlier one may come from a daemon that is gone (a restart, a cut link):
  // the new daemon does not hold its lease, so it is claimed, and refused.
  int64_t connection_first_seq = 1;
  int64_t connections_seen = 0;  // handshakes on the commands socket so far
  auto announce = [&](int64_t c) {
    credit = c;
    ReadyMessage r{m_options.id, m_service.name, c, ++ready_seq};
    auto before = SteadyClock::now();
    ready_times.emplace(r.seq, before);
    if (ready_times.size() > k_ready_times) ready_times.erase(ready_times.begin());
    if (send_on_commands(encode(r))) ready_sent = before;
  };
  // When the lease of c holds until at the earliest, by this worker's clock,
  // less a margin for the two clocks' rates; nullopt if c does not say.
  auto lease_floor = [&](const Command& c) -> std::optional<SteadyClock::time_point> {
    if (c.ready_seq < connection_first_seq || c.lease_ms <= 0) return std::nullopt;
    auto t = ready_times.find(c.ready_seq);
    if (t == ready_times.end()) return std::nullopt;
    return t->second + std::chrono::milliseconds(c.lease_ms - start_margin_ms(c.lease_ms));
  };
  auto publish_processing = [&](const Command& c) {
    Event processing;
    processing.request_id = c.id;
    processing.type = c.name + "_processing";
    processing.state = OpState::processing;
    processing.worker = m_options.id;
    processing.attempt = c.attempt;
    processing.time = format_rfc3339_ms(now_ms());
    publish(pub, encode(processing));
    timeline_mark("processing_published", c.id);
  };

  // Starts a batch whose leases hold until holds_until (a grant's, or
  // lease_floor's): each command before then, or not at all.
  auto start_batch = [&](std::vector<Command>& batch, SteadyClock::time_point holds_until) {
    if (!batch.empty() && runner) {
      // An external service's commands run on the runner's threads, each
      // started there before holds_until or not at all (external_runner.h).
      for (Command& c : batch) {
        publish_processing(c);
        // The handler's document (protocol §13) is the command without the
        // commands channel's own fields.
        c.ready_seq = 0;
        c.lease_ms = 0;
        bool was_canceled = canceled.count(c.id) > 0, was_fenced = fenced.count(c.id) > 0;
        runner->start(std::move(c), was_canceled, was_fenced, holds_until);
      }
    } else if (!batch.empty()) {
      in_hand.add(batch);
      in_flight += static_cast<int64_t>(batch.size());
      for (const Command& c : batch) publish_processing(c);
      std::vector<Event> outcomes;
      std::vector<std::string> bodies;  // each outcome's encoding, as recorded
      try {
        outcomes = handle_batch(m_service, sdb, batch, m_options.id,
                                [&canceled](const std::string& id) { return canceled.count(id) > 0; },
                                [&fenced](const std::string& id) { return fenced.count(id) > 0; }, holds_until,
                                &bodies);
      } catch (const std::exception& e) {
        // The database itself failed (disk full, locked too long): nothing is
        // recorded and no outcome is sent, so the leases run out and the
        // commands are delivered again.
        log_error("handling failed; leaving it to redelivery",
                  {{"commands", std::to_string(batch.size())}, {"error", e.what()}});
      }
      for (size_t i = 0; i < outcomes.size(); ++i) {
        publish(pub, Frames{k_kind_event, std::move(bodies[i])});
        timeline_mark("outcome_published", outcomes[i].request_id);
      }
      in_flight -= static_cast<int64_t>(batch.size());
      in_hand.clear();
    }
  };

  // A zmq_poll costs two system calls per ZeroMQ socket in it, before it
  // sleeps and again when it wakes, and this loop runs for every message.
  // So it polls only the sockets that bring work: control and commands, and
  // the XPUB until the tracker's subscription came. The watches (log lines,
  // and a new connection's credit announce) and the XPUB's later
  // subscriptions are read at most every k_quiet_interval, or each time
  // round until the first commands connection is seen.
  constexpr std::chrono::milliseconds k_quiet_interval{50};
  SteadyClock::time_point quiet_read{};
  while (!stop) {
    zmq::pollitem_t items[3];
    size_t polled = 0;
    items[polled++] = {control.handle(), 0, ZMQ_POLLIN, 0};
    if (connected_commands) items[polled++] = {commands.handle(), 0, ZMQ_POLLIN, 0};
    const bool poll_pub = !subscribed;
    if (poll_pub) items[polled++] = {pub.handle(), 0, ZMQ_POLLIN, 0};
    // An external service looks for finished runs often while it has any.
    bool busy = runner && runner->free_slots() < static_cast<size_t>(m_service.external->options.concurrency);
    try {
      zmq::poll(items, polled, std::chrono::milliseconds(busy ? 10 : 100));
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    bool quiet_due = connections_seen == 0 || SteadyClock::now() - quiet_read >= k_quiet_interval;
    if (quiet_due) {
      quiet_read = SteadyClock::now();
      events_watch.poll();
      commands_watch.poll();
    }
    if ((poll_pub && (items[polled - 1].revents & ZMQ_POLLIN)) || quiet_due) {
      zmq::message_t sub;
      while (pub.recv(sub, zmq::recv_flags::dontwait)) {
        if (sub.size() > 0 && static_cast<const uint8_t*>(sub.data())[0] == 1 && !subscribed) {
          subscribed = true;
          log_info("tracker subscribed; taking commands", {{"commands", m_options.commands_endpoint}});
        }
      }
      if (subscribed && !connected_commands) {
        try {
          commands.connect(m_options.commands_endpoint);
        } catch (const zmq::error_t& e) {
          log_error("cannot connect", {{"commands", m_options.commands_endpoint}, {"error", e.what()}});
          return 1;
        }
        connected_commands = true;
      }
    }
    {
      // Drained every time round, not only when poll said so: after a
      // SIGSTOP the commands can be ready before the notices sent meanwhile.
      for (;;) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(control, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
        std::string kind = parts.size() == 2 ? parts[0].to_string() : "";
        if (kind == k_kind_fence) {
          auto f = decode_fence(parts[1].to_string());
          if (!f) {
            bad("undecodable control message", f.error());
            continue;
          }
          if (!f->service.empty() && f->service != m_service.name) continue;  // another service's
          if (remember(fenced, fenced_order, f->request_id) && fences_to_record.size() < 100000) {
            fences_to_record.push_back(f->request_id);
          }
          continue;
        }
        auto c = kind == k_kind_cancel ? decode_cancel(parts[1].to_string())
                                       : Result<CancelNotice>(Error{"bad control message"});
        if (!c) {
          bad("undecodable control message", c.error());
          continue;
        }
        remember(canceled, canceled_order, c->request_id);
        if (runner) runner->cancel(c->request_id);  // stops it if it runs here
      }
    }
    if (runner) {
      for (auto& done : runner->take_finished()) {
        if (done.event) publish(pub, encode(*done.event));
      }
    }
    if (!fences_to_record.empty()) {
      // Record them now, so that any worker sharing the database (also one
      // that missed the notice) re-publishes the give-up instead of running
      // the command. If the database is busy, try again next time round;
      // meanwhile this worker's own check (fenced) still holds.
      try {
        record_fences(sdb, fences_to_record, m_options.id);
        fences_to_record.clear();
      } catch (const std::exception& e) {
        log_warn("cannot record fences yet", {{"count", std::to_string(fences_to_record.size())}, {"error", e.what()}});
      }
    }
    if (!connected_commands) continue;
    auto now = SteadyClock::now();
    // A new connection (also after a cut link came back) hears our credit at
    // once; every connection hears it at least once a heartbeat interval.
    int handshakes = commands_watch.take_connections();
    bool new_connection = handshakes > 0;
    // The first connection ever carried every ready that went out, also
    // one sent before its handshake's event was read here (with
    // ZMQ_IMMEDIATE a send needs a finished handshake): its seqs stay good.
    // After a later one, a ready sent before it may have gone to a daemon
    // that is gone.
    if (new_connection && (connections_seen > 0 || handshakes > 1)) {
      connection_first_seq = ready_seq + 1;  // the announce below sends it
    }
    connections_seen += handshakes;
    if (new_connection || now - ready_sent >= std::chrono::milliseconds(m_options.heartbeat_ms)) {
      announce(credit);
    }

    // Read what the daemon sent: commands, and the grant for our claim.
    std::optional<GrantMessage> grant;
    for (int burst = 0; burst < 4 * static_cast<int>(k_max_batch) && !stop; ++burst) {
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(commands, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
      // libzmq (4.3.4) handles the socket's pending commands at every 100th
      // frame read, even between the two frames of one message. On this
      // ZMQ_IMMEDIATE socket, the hiccup of a link that dropped (a killed
      // daemon) ends the pipe there, under a half-read command, and libzmq
      // aborts (fq.cpp: !_more; bench/RESULTS.md, "a worker aborts in
      // libzmq"). Asking for ZMQ_EVENTS handles them now, between messages;
      // what remains is a hiccup that arrives in the microseconds before
      // the next message's second frame, on a 100th frame.
      (void)commands.get(zmq::sockopt::events);
      if (parts.size() != 2) {
        bad("undecodable command", "expected 2 frames");
        continue;
      }
      std::string kind = parts[0].to_string();
      if (kind == k_kind_grant) {
        auto g = decode_grant(parts[1].to_string());
        if (!g) {
          bad("undecodable grant", g.error());
          continue;
        }
        grant = std::move(g.value());
        continue;
      }
      auto cmd = decode_command(kind, parts[1].to_string());
      if (!cmd) {
        bad("undecodable command", cmd.error());
        continue;
      }
      if (cmd->service != m_service.name && !cmd->service.empty()) {
        log_warn("command for another service", {{"service", cmd->service}, {"id", cmd->id}});
      }
      timeline_mark("command_received", cmd->id);
      received.push_back(std::move(cmd.value()));
    }

    if (!claimed.empty() && grant) {
      // Start only what was granted, and only while the grant still holds:
      // the lease lasts lease_ms from the daemon's answer, which came after
      // claim_sent, so by our own clock it holds until claim_sent + lease_ms.
      auto holds_until = claim_sent + std::chrono::milliseconds(grant->lease_ms);
      std::map<std::string, const GrantEntry*> granted;
      for (const GrantEntry& g : grant->granted) granted[g.id] = &g;
      std::set<std::string> answered;
      for (const GrantEntry& g : grant->granted) answered.insert(g.id);
      for (const GrantEntry& g : grant->refused) answered.insert(g.id);
      bool ours = std::any_of(claimed.begin(), claimed.end(), [&](const Command& c) { return answered.count(c.id) > 0; });
      if (!ours) continue;  // the answer to a claim given up on earlier: not this batch's
      std::vector<Command> batch;
      size_t refused = 0;
      for (Command& c : claimed) {
        auto g = granted.find(c.id);
        if (g == granted.end() || g->second->attempt != c.attempt) {
          ++refused;  // the lease is lost: another attempt has it, or it ended
          continue;
        }
        if (g->second->cancel) c.cancel = true;
        timeline_mark("grant_received", c.id);
        batch.push_back(std::move(c));
      }
      claimed.clear();
      if (refused > 0) {
        log_info("claims refused: not started, their leases are lost", {{"count", std::to_string(refused)}});
      }
      if (SteadyClock::now() >= holds_until) {
        log_warn("a grant came after its lease; none of the batch is started", {{"commands", std::to_string(batch.size())}});
        batch.clear();
      }
      start_batch(batch, holds_until);
    } else if (!claimed.empty() && SteadyClock::now() - claim_sent > std::chrono::seconds(5)) {
      log_warn("no answer to a claim; none of the batch is started", {{"commands", std::to_string(claimed.size())}});
      claimed.clear();
    }
    if (want_wal_restart.load(std::memory_order_relaxed) && want_wal_restart.exchange(false)) {
      // Between batches, after their outcomes went out.
      checkpoint_between_transactions(db->getHandle());
    }

    if (claimed.empty() && !received.empty()) {
      std::vector<Command> batch;
      while (!received.empty() && batch.size() < k_max_batch) {
        batch.push_back(std::move(received.front()));
        received.pop_front();
      }
      // Without a claim when every command's lease is known to hold for at
      // least half of it yet (protocol §4a, "Starting without a claim").
      // Only the built-in services: an exec or http service's commands may
      // wait for a free slot, and a grant's full window serves them better
      // than 150 us saved.
      std::optional<SteadyClock::time_point> holds_until;
      auto checked_at = SteadyClock::now();
      for (const Command& c : batch) {
        auto floor = runner ? std::nullopt : lease_floor(c);
        if (!floor || *floor - checked_at < std::chrono::milliseconds(c.lease_ms / 2)) {
          holds_until.reset();
          break;
        }
        holds_until = holds_until ? std::min(*holds_until, *floor) : *floor;
      }
      if (holds_until) {
        // The repeat check is the one in the batch's transaction: a command
        // handled before gets its recorded outcome from there, as here.
        started_without_claim += batch.size();
        for (const Command& c : batch) timeline_mark("started_without_claim", c.id);
        // The credit pauses, as after a claim: nothing more until the batch
        // is handled. Except for a small batch of a quick service, which
        // ends within about a millisecond: pausing would cost a `ready`
        // before it and another after it, each a wake-up of the daemon's
        // dispatcher on the way of the command. What comes meanwhile waits
        // for the next batch, and the daemon sends to the worker with the
        // most free credit anyway. A handler that may hold on (Service::
        // quick unset) would leave such commands waiting here, their leases
        // running, so its batches always pause.
        if (!m_service.quick || batch.size() >= k_pause_batch) announce(0);
        start_batch(batch, *holds_until);
      } else {
        // A command whose outcome is recorded already needs no claim:
        // re-publishing it has no effect, so it goes out at once. The rest
        // is claimed in one claim.
        std::map<std::string, Event> recorded;
        try {
          recorded = recorded_outcomes(sdb, batch, m_options.id);
        } catch (const std::exception& e) {
          log_warn("cannot read recorded outcomes; claiming the whole batch", {{"error", e.what()}});
        }
        ClaimMessage claim;
        for (Command& c : batch) {
          auto r = recorded.find(c.id);
          if (r != recorded.end()) {
            publish_processing(c);
            publish(pub, encode(r->second));
            continue;
          }
          claim.claims.push_back({c.id, c.attempt});
          claimed.push_back(std::move(c));
        }
        if (!claimed.empty()) {
          claim_sent = SteadyClock::now();
          if (timeline_on()) {
            for (const ClaimEntry& x : claim.claims) timeline_mark("claim_sent", x.id);
          }
          if (!send_on_commands(encode(claim))) {
            log_warn("cannot send a claim (no connection to the daemon); none of the batch is started",
                     {{"commands", std::to_string(claimed.size())}});
            claimed.clear();
          }
        }
      }
    }
    // The credit says what this worker can start now: nothing while a
    // batch waits for its grant or is handled, a batch's worth otherwise.
    // An external service's batch runs beside the loop: its credit is the
    // runner's free slots less what waits for a claim or a grant.
    int64_t want = claimed.empty() && received.empty() ? idle_credit : 0;
    if (runner) {
      int64_t waiting = static_cast<int64_t>(received.size() + claimed.size());
      want = std::max<int64_t>(0, std::min<int64_t>(idle_credit, static_cast<int64_t>(runner->free_slots()) - waiting));
    }
    if (want != credit) announce(want);
  }
  log_info("stopping", {{"started_without_claim", std::to_string(started_without_claim)}});
  return 0;
}

}  // namespace asyncops
