#include "daemon/dispatcher.h"

#include <zmq_addon.hpp>

#include "daemon/zmq_bind.h"
#include "shared/log.h"
#include "shared/named_thread.h"

namespace asyncops {

Dispatcher::Dispatcher(zmq::context_t& ctx, std::map<std::string, std::string> endpoints,
                       std::string control, DispatchOptions options, Hooks hooks)
    : m_ctx(ctx),
      m_endpoints(std::move(endpoints)),
      m_control_endpoint(std::move(control)),
      m_options(options),
      m_hooks(std::move(hooks)) {}

Dispatcher::~Dispatcher() { stop(); }

Status Dispatcher::bind() {
  for (const auto& [service, endpoint] : m_endpoints) {
    try {
      zmq::socket_t s(m_ctx, zmq::socket_type::push);
      s.set(zmq::sockopt::linger, 0);
      // Queue only to peers whose connection is complete: with no worker,
      // send() says EAGAIN and the command stays in our backlog instead of a
      // ZeroMQ pipe that would die with a peer.
      s.set(zmq::sockopt::immediate, 1);
      s.set(zmq::sockopt::sndhwm, 1000);
      bind_owner_only(s, endpoint, socket_setup);
      m_sockets.emplace(service, std::move(s));
    } catch (const zmq::error_t& e) {
      return Error{"cannot bind commands endpoint " + endpoint + " for service " + service + ": " +
                   e.what()};
    }
  }
  if (!m_control_endpoint.empty()) {
    try {
      m_control = std::make_unique<zmq::socket_t>(m_ctx, zmq::socket_type::pub);
      m_control->set(zmq::sockopt::linger, 0);
      bind_owner_only(*m_control, m_control_endpoint, socket_setup);
    } catch (const zmq::error_t& e) {
      return Error{"cannot bind control endpoint " + m_control_endpoint + ": " + e.what()};
    }
  }
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
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
  // Cancels that came too late to be decided: stored as requested, so
  // that the command carries `cancel` when it is sent after the restart.
  for (auto& [id, done] : stranded) {
    store_cancel({CancelDecision::Kind::notify_workers, id, ""}, std::nullopt, std::move(done));
  }
  m_sockets.clear();
  m_control.reset();
}

void Dispatcher::enqueue(std::vector<Command> commands) {
  {
    MutexLock lock(&m_mutex);
    for (auto& c : commands) m_inbox.commands.push_back(std::move(c));
  }
  m_cv.notify_one();
}

void Dispatcher::observe(const std::vector<Change>& changes) {
  bool any = false;
  {
    MutexLock lock(&m_mutex);
    for (const Change& c : changes) {
      if (is_terminal(c.op.state) || c.op.state == OpState::processing) {
        m_inbox.changes.push_back(c);
        any = true;
      }
    }
  }
  if (any) m_cv.notify_one();
}

void Dispatcher::heartbeat(const Heartbeat& hb) {
  if (hb.requests.empty()) return;
  {
    MutexLock lock(&m_mutex);
    m_inbox.heartbeats.push_back(hb);
  }
  m_cv.notify_one();
}

void Dispatcher::cancel(const std::string& op_id, CancelDone done) {
  {
    MutexLock lock(&m_mutex);
    if (!m_stopping) {
      m_inbox.cancels.emplace_back(op_id, std::move(done));
      m_cv.notify_one();
      return;
    }
  }
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
    m_cv.notify_one();
  };
  if (!m_hooks.on_cancel) return after(Status::success());  // no store to tell
  m_hooks.on_cancel(std::move(decision), std::move(after));
}

void Dispatcher::decide_cancel(const std::string& id, CancelDone done) {
  // Only a first attempt that was never sent can be taken back for sure;
  // an earlier attempt of a redelivery may still be with some worker, so
  // the workers are told, and a worker decides.
  for (auto& [service, queue] : m_ready) {
    for (auto q = queue.begin(); q != queue.end(); ++q) {
      if (q->id != id || q->attempt > 1) continue;
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
    auto it = m_leases.find(c.op.id);
    if (is_terminal(c.op.state)) {
      m_canceled.erase(c.op.id);
      if (it != m_leases.end()) {
        --m_in_flight[it->second.command.service];
        end_lease(it);
      }
      // Also drop it from waiting redeliveries (e.g. canceled meanwhile).
      for (auto d = m_delayed.begin(); d != m_delayed.end();) {
        d = d->second.id == c.op.id ? m_delayed.erase(d) : std::next(d);
      }
    } else if (it != m_leases.end()) {  // processing: the worker has it
      renew(it->second, now + m_options.lease);
    }
  }
  for (const Heartbeat& hb : in.heartbeats) {
    for (const std::string& id : hb.requests) {
      auto it = m_leases.find(id);
      if (it == m_leases.end()) continue;
      renew(it->second, now + m_options.lease);
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

void Dispatcher::end_lease(std::map<std::string, Lease>::iterator it) {
  if (it->second.has_slot) m_deadlines.erase(it->second.slot);
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
    if (made >= m_options.max_attempts) {
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
    size_t& flying = m_in_flight[service];
    while (!queue.empty() && flying < m_options.max_in_flight) {
      Command& c = queue.front();
      Frames f = encode(c);
      std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
      try {
        if (!zmq::send_multipart(sock, parts, zmq::send_flags::dontwait)) break;  // EAGAIN: no room
      } catch (const zmq::error_t& e) {
        log_error("send to workers failed", {{"service", service}, {"error", e.what()}});
        break;
      }
      sent.emplace_back(c.id, c.attempt);
      std::string id = c.id;
      if (auto old = m_leases.find(id); old != m_leases.end()) end_lease(old);  // cannot happen: sent once per lease
      Lease& lease = m_leases[id];
      lease.command = std::move(c);
      lease.cancel = false;
      renew(lease, now + m_options.lease);
      ++flying;
      queue.pop_front();
      m_sent++;
    }
  }
  if (!sent.empty() && m_hooks.on_sent) m_hooks.on_sent(std::move(sent));
}

Dispatcher::Clock::time_point Dispatcher::next_wakeup(Clock::time_point now) const {
  Clock::time_point t = now + std::chrono::milliseconds(500);
  if (!m_deadlines.empty()) t = std::min(t, m_deadlines.begin()->first);
  if (!m_delayed.empty()) t = std::min(t, m_delayed.begin()->first);
  for (const auto& [service, queue] : m_ready) {
    // Something to send but no room: try again soon.
    if (!queue.empty()) t = std::min(t, now + std::chrono::milliseconds(5));
  }
  return t;
}

void Dispatcher::run() {
  Inbox in;
  for (;;) {
    auto now = Clock::now();
    {
      auto wakeup = next_wakeup(now);
      MutexLock lock(&m_mutex);
      while (!m_stopping && m_inbox.empty() && m_cv.wait_until(&m_mutex, wakeup)) {
      }
      if (m_stopping) return;
      std::swap(in, m_inbox);
    }
    now = Clock::now();
    take(in, now);
    in = Inbox();
    expire(now);
    send_ready(now);
    size_t waiting = m_delayed.size();
    for (const auto& [s, q] : m_ready) waiting += q.size();
    m_waiting = waiting;
    m_in_flight_count = m_leases.size();
    m_deadline_count = m_deadlines.size();
  }
}

}  // namespace asyncops
