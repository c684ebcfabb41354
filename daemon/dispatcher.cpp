#include "daemon/dispatcher.h"
#include "shared/timeline.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq_addon.hpp>

#include "daemon/zmq_bind.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/named_thread.h"

namespace asyncops {

namespace {
// How often the loop reads its handshake watches (see run()).
constexpr std::chrono::milliseconds k_watch_interval{50};

// What a committed change means for the lease it is about (keyed by its
// request id: the operation's id, or a saga step's or compensation's).
enum class LeaseEffect { none, renew, end };
LeaseEffect lease_effect(const Change& c) {
  if (c.request_id.empty()) {
    if (is_terminal(c.op.state)) return LeaseEffect::end;
    return c.op.state == OpState::processing ? LeaseEffect::renew : LeaseEffect::none;
  }
  switch (c.kind) {
    case HistoryKind::step_processing:
    case HistoryKind::compensation_processing:
      return LeaseEffect::renew;
    case HistoryKind::step_completed:
    case HistoryKind::step_rejected:
    case HistoryKind::step_failed:
    case HistoryKind::step_canceled:
    case HistoryKind::compensation_completed:
    case HistoryKind::compensation_failed:
      return LeaseEffect::end;
    default:
      return LeaseEffect::none;
  }
}
const std::string& lease_key(const Change& c) { return c.request_id.empty() ? c.op.id : c.request_id; }
}  // namespace

std::chrono::milliseconds Dispatcher::lease_of(const Command& c) const {
  return c.lease.count() > 0 ? c.lease : m_options.lease;
}

bool Dispatcher::attempts_left(const Command& c) const {
  if (c.max_attempts == k_unlimited_attempts) return true;  // a saga step's settle
  int max = c.max_attempts > 0 ? c.max_attempts : m_options.max_attempts;
  return c.attempt < max;
}

Dispatcher::Dispatcher(zmq::context_t& ctx, std::map<std::string, std::string> endpoints,
                       std::string control, DispatchOptions options, Hooks hooks)
    : m_ctx(ctx),
      m_endpoints(std::move(endpoints)),
      m_control_endpoint(std::move(control)),
      m_options(options),
      m_hooks(std::move(hooks)) {
  m_wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Dispatcher::~Dispatcher() {
  stop();
  if (m_wake_fd >= 0) ::close(m_wake_fd);
}

void Dispatcher::wake() {
  uint64_t one = 1;
  if (m_wake_fd >= 0) (void)!::write(m_wake_fd, &one, sizeof one);
}

Status Dispatcher::bind() {
  for (const auto& [service, endpoint] : m_endpoints) {
    try {
      zmq::socket_t s(m_ctx, zmq::socket_type::router);
      s.set(zmq::sockopt::linger, 0);
      // A send to a connection that is gone fails (EHOSTUNREACH) instead of
      // vanishing, so the dispatcher learns it and forgets that credit.
      s.set(zmq::sockopt::router_mandatory, 1);
      s.set(zmq::sockopt::sndhwm, 1000);
      s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(k_max_transport_bytes));
      apply_liveness(s, endpoint, m_options.liveness);
      bind_owner_only(s, endpoint, socket_setup);
      auto placed = m_sockets.emplace(service, std::move(s)).first;
      m_watches.push_back(std::make_unique<HandshakeWatch>(placed->second, "commands." + service, endpoint,
                                                           HandshakeWatch::Side::bound));
    } catch (const zmq::error_t& e) {
      return Error{"cannot bind commands endpoint " + endpoint + " for service " + service + ": " +
                   e.what()};
    }
  }
  if (!m_control_endpoint.empty()) {
    try {
      m_control = std::make_unique<zmq::socket_t>(m_ctx, zmq::socket_type::pub);
      m_control->set(zmq::sockopt::linger, 0);
      apply_liveness(*m_control, m_control_endpoint, m_options.liveness);
      bind_owner_only(*m_control, m_control_endpoint, socket_setup);
    } catch (const zmq::error_t& e) {
      return Error{"cannot bind control endpoint " + m_control_endpoint + ": " + e.what()};
    }
  }
  if (m_wake_fd < 0) return Error{"cannot make the dispatcher's eventfd"};
  return Status::success();
}

void Dispatcher::start() { m_thread = named_thread("aops-dispatch", [this] { run(); }); }

void Dispatcher::stop() {
  std::vector<std::pair<std::string, CancelDone>> stranded;
  {
    MutexLock lock(&m_mutex);
    m_stopping = true;
    stranded.swap(m_inbox.cancels);
  }
  wake();
  if (m_thread.joinable()) m_thread.join();
  // Cancels that came too late to be decided: stored as requested, so
  // that the command carries `cancel` when it is sent after the restart.
  for (auto& [id, done] : stranded) {
    store_cancel({CancelDecision::Kind::notify_workers, id, ""}, std::nullopt, std::move(done));
  }
  m_watches.clear();  // before the sockets they watch
  m_sockets.clear();
  m_control.reset();
}

void Dispatcher::enqueue(std::vector<Command> commands) {
  {
    MutexLock lock(&m_mutex);
    if (m_inbox.commands.empty()) {
      m_inbox.commands.swap(commands);  // the usual case: no copy under the lock
    } else {
      for (auto& c : commands) m_inbox.commands.push_back(std::move(c));
    }
  }
  wake();
}

void Dispatcher::enqueue_recovered(std::vector<Command> commands) {
  {
    MutexLock lock(&m_mutex);
    for (auto& c : commands) {
      m_inbox.maybe_sent.push_back(c.id);
      m_inbox.commands.push_back(std::move(c));
    }
  }
  wake();
}

void Dispatcher::observe(const std::vector<Change>& changes) {
  bool urgent = false;
  {
    MutexLock lock(&m_mutex);
    for (const Change& c : changes) {
      LeaseEffect effect = lease_effect(c);
      if (effect == LeaseEffect::none) continue;
      m_inbox.changes.push_back(c);
      // Only an ended lease can let something go out now: a waiting
      // command that the in-flight cap held back. Anything else waits for
      // the dispatcher's next wake-up (a new command, a worker's message, a
      // deadline, or at most 500 ms), which takes the inbox before it
      // expires any lease, so a lease is never expired for want of it.
      // m_waiting is read under m_mutex: the dispatcher stores it before it
      // locks m_mutex to look at the inbox before its poll, so either it
      // sees this change there or this sees its count.
      if (effect == LeaseEffect::end && m_waiting.load() > 0) urgent = true;
    }
  }
  if (urgent) wake();
}

void Dispatcher::end_leases(std::vector<std::string> ids) {
  if (ids.empty()) return;
  {
    MutexLock lock(&m_mutex);
    for (std::string& id : ids) m_inbox.ended.push_back(std::move(id));
  }
  wake();
}

void Dispatcher::heartbeat(const Heartbeat& hb) {
  if (hb.requests.empty()) return;
  {
    MutexLock lock(&m_mutex);
    m_inbox.heartbeats.push_back(hb);
  }
  wake();
}

void Dispatcher::cancel(const std::string& op_id, CancelDone done) {
  bool queued = false;
  {
    MutexLock lock(&m_mutex);
    if (!m_stopping) {
      m_inbox.cancels.emplace_back(op_id, std::move(done));
      queued = true;
    }
  }
  if (queued) return wake();
  store_cancel({CancelDecision::Kind::notify_workers, op_id, ""}, std::nullopt, std::move(done));
}

void Dispatcher::store_cancel(CancelDecision decision, std::optional<Command> taken, CancelDone done) {
  bool tell = decision.kind == CancelDecision::Kind::notify_workers;
  std::string id = decision.op_id;
  // Runs on the commit thread (or here): the workers hear of a cancel only
  // once it is stored, and a command taken back for a cancel that was not
  // stored goes back to its queue.
  CancelDone after = [this, tell, id, taken = std::move(taken), done = std::move(done)](Status r) mutable {
    bool stored = r.ok();
    done(std::move(r));
    if (stored ? !tell : !taken) return;
    {
      MutexLock lock(&m_mutex);
      if (stored) {
        m_inbox.stored_cancels.push_back(id);
      } else {
        m_inbox.taken_back.push_back(std::move(*taken));
      }
    }
    wake();
  };
  if (!m_hooks.on_cancel) return after(Status::success());  // no store to tell
  m_hooks.on_cancel(std::move(decision), std::move(after));
}

void Dispatcher::decide_cancel(const std::string& id, CancelDone done) {
  // A saga's compensation is never canceled (docs/design/sagas.md §3): it
  // undoes what completed. Nothing to decide or tell.
  if (auto ref = saga::parse_step_request_id(id); ref && ref->compensation) return done(Status::success());
  // Only a first attempt that was never sent can be taken back for sure;
  // an earlier attempt of a redelivery, or a command the last run may have
  // sent, may still be with some worker, so the workers are told, and a
  // worker decides.
  for (auto& [service, queue] : m_ready) {
    for (auto q = queue.begin(); q != queue.end(); ++q) {
      if (q->id != id || q->attempt > 1 || m_maybe_sent.count(id)) continue;
      Command taken = std::move(*q);
      queue.erase(q);
      m_canceled.insert(id);  // until the canceled state is committed
      CancelDecision d{CancelDecision::Kind::taken_back, id, taken.name};
      return store_cancel(std::move(d), std::move(taken), std::move(done));
    }
  }
  store_cancel({CancelDecision::Kind::notify_workers, id, ""}, std::nullopt, std::move(done));
}

void Dispatcher::tell_workers(const std::string& id) {
  // Whatever attempt of it is queued, waits out a backoff or is leased
  // carries `cancel` when it is sent (again).
  for (auto& [service, queue] : m_ready) {
    for (Command& c : queue) {
      if (c.id == id) c.cancel = true;
    }
  }
  for (auto& [when, c] : m_delayed) {
    if (c.id == id) c.cancel = true;
  }
  auto it = m_leases.find(id);
  if (it != m_leases.end()) it->second.cancel = true;
  broadcast_cancel(id);
}

void Dispatcher::take(Inbox& in, Clock::time_point now) {
  m_maybe_sent.insert(in.maybe_sent.begin(), in.maybe_sent.end());
  for (Command& c : in.commands) {
    if (!m_sockets.count(c.service)) {
      log_error("no commands endpoint for service; the operation stays pending",
                {{"service", c.service}, {"id", c.id}});
      continue;
    }
    if (m_leases.count(c.id) || m_canceled.count(c.id)) continue;
    m_ready[c.service].push_back(std::move(c));
  }
  for (const Change& c : in.changes) {
    const std::string& id = lease_key(c);
    if (lease_effect(c) == LeaseEffect::end) {
      finish(id);
      continue;
    }
    auto it = m_leases.find(id);
    if (it != m_leases.end()) renew(it->second, now + lease_of(it->second.command));  // processing: the worker has it
  }
  for (const std::string& id : in.ended) finish(id);
  for (const Heartbeat& hb : in.heartbeats) {
    for (const std::string& id : hb.requests) {
      auto it = m_leases.find(id);
      if (it == m_leases.end()) continue;
      renew(it->second, now + lease_of(it->second.command));
    }
  }
  for (auto& [id, done] : in.cancels) decide_cancel(id, std::move(done));
  for (const std::string& id : in.stored_cancels) tell_workers(id);
  for (Command& c : in.taken_back) {
    // Its cancel was not stored: the operation goes on as if never canceled.
    m_canceled.erase(c.id);
    m_ready[c.service].push_front(std::move(c));
  }
}

void Dispatcher::broadcast_cancel(const std::string& op_id) { publish_control(encode(CancelNotice{op_id}), op_id); }

void Dispatcher::broadcast_fence(const std::string& op_id, const std::string& service) {
  publish_control(encode(FenceNotice{op_id, service}), op_id);
}

void Dispatcher::publish_control(const Frames& f, const std::string& op_id) {
  if (!m_control) return;
  // Both frames are held by f for the whole send: zmq::buffer does not copy
  // (ASan once found a temporary std::string here).
  std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
  try {
    zmq::send_multipart(*m_control, parts, zmq::send_flags::dontwait);
  } catch (const zmq::error_t& e) {
    log_warn("cannot publish a control notice", {{"kind", f.kind}, {"id", op_id}, {"error", e.what()}});
  }
}

void Dispatcher::renew(Lease& lease, Clock::time_point deadline) {
  if (lease.has_slot) m_deadlines.erase(lease.slot);
  lease.deadline = deadline;
  lease.slot = m_deadlines.emplace(deadline, lease.command.id);
  lease.has_slot = true;
}

void Dispatcher::finish(const std::string& id) {
  m_canceled.erase(id);
  m_maybe_sent.erase(id);
  if (auto it = m_leases.find(id); it != m_leases.end()) {
    --m_in_flight[it->second.command.service];
    end_lease(it);
  }
  // Also drop it from waiting redeliveries (e.g. canceled meanwhile).
  for (auto d = m_delayed.begin(); d != m_delayed.end();) {
    d = d->second.id == id ? m_delayed.erase(d) : std::next(d);
  }
}

void Dispatcher::end_lease(std::map<std::string, Lease>::iterator it) {
  if (it->second.has_slot) m_deadlines.erase(it->second.slot);
  // Its connection may take another command in its place.
  auto credits = m_credits.find(it->second.command.service);
  if (credits != m_credits.end()) credits->second.released(it->second.peer);
  m_leases.erase(it);
}

void Dispatcher::expire(Clock::time_point now) {
  while (!m_deadlines.empty() && m_deadlines.begin()->first <= now) {
    std::string id = m_deadlines.begin()->second;
    auto it = m_leases.find(id);
    if (it == m_leases.end()) {  // cannot happen: every entry belongs to a lease
      m_deadlines.erase(m_deadlines.begin());
      continue;
    }
    Lease lease = std::move(it->second);
    end_lease(it);
    --m_in_flight[lease.command.service];
    int made = lease.command.attempt;
    if (!attempts_left(lease.command)) {
      log_warn("giving up: no progress within the lease", {{"id", id}, {"attempts", std::to_string(made)}});
      // Tell the workers first: one that still holds the command records
      // failed/worker_timeout for it instead of running it. If one ran it
      // already, its real outcome supersedes the give-up (StoreWriter).
      broadcast_fence(id, lease.command.service);
      if (m_hooks.on_gave_up) m_hooks.on_gave_up(id, made);
      continue;
    }
    auto backoff = m_options.backoff * (1LL << std::min(made - 1, 20));
    if (backoff > m_options.max_backoff) backoff = m_options.max_backoff;
    Command again = std::move(lease.command);
    again.attempt = made + 1;
    again.cancel = again.cancel || lease.cancel;
    log_info("lease expired; redelivering",
             {{"id", id}, {"attempt", std::to_string(again.attempt)},
              {"after_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count())}});
    m_delayed.emplace(now + backoff, std::move(again));
  }
  while (!m_delayed.empty() && m_delayed.begin()->first <= now) {
    Command c = std::move(m_delayed.begin()->second);
    m_delayed.erase(m_delayed.begin());
    m_redelivered++;
    m_ready[c.service].push_front(std::move(c));  // a redelivery goes first
  }
}

void Dispatcher::send_ready(Clock::time_point now) {
  std::vector<std::pair<std::string, int>> sent;
  for (auto& [service, queue] : m_ready) {
    zmq::socket_t& sock = m_sockets.at(service);
    WorkerCredits& credits = m_credits[service];
    size_t& flying = m_in_flight[service];
    while (!queue.empty() && flying < m_options.max_in_flight) {
      auto peer = credits.pick();
      if (!peer) break;  // no worker can start more now: it waits here, with no lease running
      Command& c = queue.front();
      // For a worker that may start it without a claim (protocol §4a): the
      // last `ready` heard from that connection, and the lease this send
      // starts. Both were read at `now`, which is after every `ready` that
      // read_workers took, so the lease below starts after that `ready`.
      c.ready_seq = credits.last_seq(*peer);
      c.lease_ms = c.ready_seq > 0 ? std::min<int64_t>(lease_of(c).count(), k_max_lease_ms) : 0;
      Frames f = encode(c);
      std::array<zmq::const_buffer, 3> parts = {zmq::buffer(*peer), zmq::buffer(f.kind), zmq::buffer(f.body)};
      try {
        if (!zmq::send_multipart(sock, parts, zmq::send_flags::dontwait)) break;  // EAGAIN: its pipe is full
        timeline_mark("command_sent", c.id);
      } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH) {
          // ZeroMQ closed that connection (heartbeats, or the worker left):
          // forget its credit and try the next worker.
          std::string worker = credits.forget(*peer);
          m_connections_lost++;
          log_warn("a worker's connection is gone; no more commands go to it",
                   {{"service", service}, {"worker", worker}});
          continue;
        }
        log_error("send to workers failed", {{"service", service}, {"error", e.what()}});
        break;
      }
      sent.emplace_back(c.id, c.attempt);
      std::string id = c.id;
      if (auto old = m_leases.find(id); old != m_leases.end()) end_lease(old);  // cannot happen: sent once per lease
      Lease& lease = m_leases[id];
      lease.command = std::move(c);
      lease.peer = *peer;
      lease.cancel = false;
      credits.sent(*peer);
      renew(lease, now + lease_of(lease.command));
      ++flying;
      queue.pop_front();
      m_sent++;
    }
  }
  if (!sent.empty() && m_hooks.on_sent) m_hooks.on_sent(std::move(sent));
}

void Dispatcher::bad_message(const std::string& service, const std::string& why) {
  uint64_t n = ++m_bad_messages;
  if (n <= 10 || n % 1000 == 0) {
    log_warn("undecodable message on a commands socket",
             {{"service", service}, {"error", why.substr(0, 200)}, {"count", std::to_string(n)}});
  }
}

void Dispatcher::read_workers(Clock::time_point now) {
  for (auto& [service, sock] : m_sockets) {
    for (int drained = 0; drained < 4096; ++drained) {
      std::vector<zmq::message_t> parts;
      try {
        if (!zmq::recv_multipart(sock, std::back_inserter(parts), zmq::recv_flags::dontwait)) break;
      } catch (const zmq::error_t& e) {
        bad_message(service, e.what());
        break;
      }
      if (parts.size() != 3) {
        bad_message(service, "expected 2 frames after the routing id, got " + std::to_string(parts.size() - 1));
        continue;
      }
      std::string peer = parts[0].to_string(), kind = parts[1].to_string(), body = parts[2].to_string();
      if (kind == k_kind_ready) {
        auto r = decode_ready(body);
        if (!r) {
          bad_message(service, "ready: " + r.error());
          continue;
        }
        size_t before = m_credits[service].peers();
        m_credits[service].ready(peer, r->worker, r->credit, now, r->seq);
        if (m_credits[service].peers() > before) {
          log_info("a worker is ready for commands",
                   {{"service", service}, {"worker", r->worker}, {"credit", std::to_string(r->credit)}});
        }
      } else if (kind == k_kind_claim) {
        auto c = decode_claim(body);
        if (!c) {
          bad_message(service, "claim: " + c.error());
          continue;  // no grant: the worker starts none of them
        }
        // A clock read after the claim was: the grant's lease must start
        // after the worker sent the claim, which `now` (read before the
        // receive) need not be.
        answer_claim(service, peer, c.value(), Clock::now());
      } else {
        bad_message(service, "unknown kind '" + kind.substr(0, 32) + "'");
      }
    }
  }
}

void Dispatcher::answer_claim(const std::string& service, const std::string& peer, const ClaimMessage& claim,
                              Clock::time_point now) {
  LeaseView view;
  auto lookup = [&](const std::string& id) -> const LeaseView* {
    auto it = m_leases.find(id);
    if (it == m_leases.end()) return nullptr;
    view.attempt = it->second.command.attempt;
    view.peer = it->second.peer;
    view.cancel = it->second.cancel || it->second.command.cancel;
    return &view;
  };
  auto renew_lease = [&](const std::string& id) {
    Lease& lease = m_leases.at(id);
    renew(lease, now + lease_of(lease.command));
  };
  // One grant holds one lease_ms: the shortest of the claimed commands'
  // own leases (a saga step may have its own), so that no worker believes
  // it holds a lease longer than the dispatcher does.
  std::chrono::milliseconds shortest{0};
  for (const ClaimEntry& c : claim.claims) {
    auto it = m_leases.find(c.id);
    if (it == m_leases.end()) continue;
    auto l = lease_of(it->second.command);
    if (shortest.count() == 0 || l < shortest) shortest = l;
  }
  if (shortest.count() == 0) shortest = m_options.lease;
  GrantMessage g = decide_claims(claim, peer, shortest.count(), lookup, renew_lease);
  m_claims_granted += g.granted.size();
  m_claims_refused += g.refused.size();
  for (const GrantEntry& r : g.refused) {
    log_info("claim refused: that attempt no longer holds the lease",
             {{"service", service}, {"id", r.id}, {"attempt", std::to_string(r.attempt)}});
  }
  Frames f = encode(g);
  std::array<zmq::const_buffer, 3> parts = {zmq::buffer(peer), zmq::buffer(f.kind), zmq::buffer(f.body)};
  try {
    if (timeline_on()) {
      for (const GrantEntry& x : g.granted) timeline_mark("grant_sent", x.id);
    }
    if (!zmq::send_multipart(m_sockets.at(service), parts, zmq::send_flags::dontwait)) {
      log_warn("cannot answer a claim now; the worker will start none of it", {{"service", service}});
    }
  } catch (const zmq::error_t& e) {
    // The connection is gone: the worker starts nothing, the leases run out.
    log_warn("cannot answer a claim", {{"service", service}, {"error", e.what()}});
  }
}

Dispatcher::Clock::time_point Dispatcher::next_wakeup(Clock::time_point now) const {
  // Sockets and the eventfd wake the poll for everything else; the 500 ms
  // bound also forgets silent connections in time.
  Clock::time_point t = now + std::chrono::milliseconds(500);
  if (!m_deadlines.empty()) t = std::min(t, m_deadlines.begin()->first);
  if (!m_delayed.empty()) t = std::min(t, m_delayed.begin()->first);
  return t;
}

void Dispatcher::run() {
  Inbox in;
  std::vector<zmq::pollitem_t> items;
  for (auto& [service, sock] : m_sockets) items.push_back({sock.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back({nullptr, m_wake_fd, ZMQ_POLLIN, 0});
  Clock::time_point watched{};
  for (;;) {
    auto now = Clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_wakeup(now) - now);
    if (wait.count() < 0) wait = std::chrono::milliseconds(0);
    {
      MutexLock lock(&m_mutex);
      if (m_stopping) return;
      if (!m_inbox.empty()) wait = std::chrono::milliseconds(0);
    }
    try {
      zmq::poll(items.data(), items.size(), wait + std::chrono::milliseconds(1));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) log_error("poll on the commands sockets failed", {{"error", e.what()}});
    }
    if (items.back().revents & ZMQ_POLLIN) {
      // One read takes an eventfd's whole count.
      uint64_t drained = 0;
      (void)!::read(m_wake_fd, &drained, sizeof drained);
    }
    {
      MutexLock lock(&m_mutex);
      if (m_stopping) return;
      std::swap(in, m_inbox);
    }
    now = Clock::now();
    take(in, now);
    in = Inbox();
    expire(now);  // before claims: an attempt whose lease ran out is not granted
    read_workers(now);
    if (now - watched >= k_watch_interval) {
      // Handshake failures only make log lines and a counter, so they are
      // read at most every k_watch_interval: a zmq_poll costs two system
      // calls per ZeroMQ socket in it, and this loop runs for every message.
      watched = now;
      uint64_t failed = 0;
      for (auto& w : m_watches) {
        w->poll();
        failed += w->failures();
      }
      m_handshakes_failed = failed;
    }
    size_t connections = 0;
    for (auto& [service, credits] : m_credits) {
      for (const std::string& worker : credits.forget_silent(now, m_options.ready_silence)) {
        m_connections_lost++;
        log_warn("a worker connection sent no ready in time; no more commands go to it",
                 {{"service", service}, {"worker", worker}});
      }
      connections += credits.peers();
    }
    // A clock read after read_workers: a lease that starts now starts after
    // every `ready` read above, which a command's ready_seq may name.
    send_ready(Clock::now());
    size_t waiting = m_delayed.size();
    for (const auto& [s, q] : m_ready) waiting += q.size();
    m_waiting = waiting;
    m_in_flight_count = m_leases.size();
    m_deadline_count = m_deadlines.size();
    m_connection_count = connections;
  }
}

}  // namespace asyncops
