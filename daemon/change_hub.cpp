#include "daemon/change_hub.h"

#include <algorithm>

namespace asyncops {


bool ChangeHub::Subscription::wait(std::chrono::steady_clock::time_point deadline) {
  MutexLock lock(&m_mutex);
  while (!m_signaled && !m_shutdown && m_cv.wait_until(&m_mutex, deadline)) {
  }
  bool woke = m_signaled;
  m_signaled = false;
  return woke;
}

std::shared_ptr<ChangeHub::Subscription> ChangeHub::subscribe(const std::string& op_id) {
  return subscribe(op_id, nullptr);
}

std::shared_ptr<ChangeHub::Subscription> ChangeHub::subscribe(const std::string& op_id,
                                                               std::function<void()> notify) {
  std::unique_ptr<Subscription> s(new Subscription());
  s->m_op_id = op_id;
  s->m_notify = std::move(notify);
  return add(std::move(s));
}

std::shared_ptr<ChangeHub::Subscription> ChangeHub::subscribe_changes(
    const std::string& op_id, std::function<void(const Change*)> on_change) {
  return subscribe_changes(op_id, 0, nullptr, std::move(on_change));
}

std::shared_ptr<ChangeHub::Subscription> ChangeHub::subscribe_changes(
    const std::string& op_id, int64_t since, bool* unchanged, std::function<void(const Change*)> on_change) {
  std::unique_ptr<Subscription> s(new Subscription());
  s->m_op_id = op_id;
  s->m_on_change = std::move(on_change);
  return add(std::move(s), since, unchanged);
}

bool ChangeHub::changed_after(const std::string& op_id, int64_t since) const {
  if (since <= 0 || since < m_floor) return true;  // what came after since is not all in the ring
  // Newest first: at low rates only a few notices came after since. Past
  // a bound, the caller reads the store rather than this scan going on.
  size_t looked = 0;
  for (auto it = m_ring.rbegin(); it != m_ring.rend() && it->seq > since; ++it) {
    if (it->op_id == op_id || ++looked > 1024) return true;
  }
  return false;
}

std::shared_ptr<ChangeHub::Subscription> ChangeHub::add(std::unique_ptr<Subscription> owned, int64_t since,
                                                        bool* unchanged) {
  Subscription* s = owned.release();  // owned by the shared_ptr below
  const std::string& op_id = s->m_op_id;
  {
    MutexLock lock(&m_mutex);
    // Under the lock that publish() holds: a change published after this
    // reaches the subscription, one published before is in the ring (or
    // the floor says it may be).
    if (unchanged) *unchanged = !changed_after(op_id, since);
    if (op_id.empty()) m_all.insert(s);
    else m_by_operation.emplace(op_id, s);
    MutexLock subscription_lock(&s->m_mutex);  // not shared yet, but its fields are guarded
    s->m_shutdown = m_shutdown;
  }
  return std::shared_ptr<Subscription>(s, [this](Subscription* p) {
    unsubscribe(p);
    delete p;
  });
}

void ChangeHub::unsubscribe(Subscription* s) {
  MutexLock lock(&m_mutex);
  if (s->m_op_id.empty()) {
    m_all.erase(s);
    return;
  }
  auto range = m_by_operation.equal_range(s->m_op_id);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == s) {
      m_by_operation.erase(it);
      break;
    }
  }
}

void ChangeHub::signal(Subscription* s, bool shutdown, const Change* change) {
  if (s->m_on_change) {
    // Under the hub's lock (see publish), so unsubscribe cannot race it.
    s->m_on_change(shutdown ? nullptr : change);
    return;
  }
  if (s->m_notify) {
    // Under the hub's lock (see publish), so unsubscribe cannot race it.
    s->m_notify();
    return;
  }
  {
    MutexLock lock(&s->m_mutex);
    s->m_signaled = true;
    if (shutdown) s->m_shutdown = true;
  }
  s->m_cv.notify_all();
}

void ChangeHub::set_floor(int64_t seq) {
  MutexLock lock(&m_mutex);
  m_floor = std::max(m_floor, seq);
  m_latest = std::max(m_latest, seq);
}

size_t ChangeHub::notice_bytes(const Notice& n) {
  return sizeof(Notice) + n.op_id.size() + n.name.size() + n.owner.size() + n.step.size() + n.op_json.size();
}

void ChangeHub::publish(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  // Notices (with the operation's JSON) are built only while someone follows
  // every change; per-operation subscribers read the store instead. Without
  // them the ring is cut, and a later /events stream replays from the store.
  bool want_notices;
  {
    MutexLock lock(&m_mutex);
    want_notices = !m_all.empty();
  }
  std::vector<Notice> notices;
  if (want_notices) {
    notices.reserve(changes.size());
    for (const Change& c : changes) {
      Notice n;
      n.seq = c.seq;
      n.op_id = c.op.id;
      n.name = c.op.name;
      n.owner = c.op.owner;
      n.state = c.op.state;
      n.kind = c.kind;
      n.step = c.step;
      n.op_json = operation_json_text(c.op);
      n.at = c.op.updated_at;
      notices.push_back(std::move(n));
    }
  }
  // Signalling happens under the hub's lock so that a subscription cannot be
  // freed between being found and being signalled.
  MutexLock lock(&m_mutex);
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    if (c.seq <= m_latest) continue;
    m_latest = c.seq;
    if (!m_by_operation.empty()) {
      auto range = m_by_operation.equal_range(c.op.id);
      for (auto it = range.first; it != range.second; ++it) signal(it->second, false, &c);
    }
    if (want_notices) {
      m_ring_bytes += notice_bytes(notices[i]);
      m_ring.push_back(std::move(notices[i]));
    } else {
      m_floor = c.seq;
    }
  }
  if (!want_notices) {
    m_ring.clear();
    m_ring_bytes = 0;
  }
  while (!m_ring.empty() && (m_ring.size() > m_capacity || m_ring_bytes > m_max_bytes)) {
    m_floor = m_ring.front().seq;
    m_ring_bytes -= notice_bytes(m_ring.front());
    m_ring.pop_front();
  }
  for (Subscription* s : m_all) signal(s, false);
}

int64_t ChangeHub::latest_seq() const {
  MutexLock lock(&m_mutex);
  return m_latest;
}

bool ChangeHub::notices_after(int64_t after, std::vector<Notice>* out, size_t max) const {
  MutexLock lock(&m_mutex);
  if (after >= m_latest) return true;
  if (after < m_floor) return false;
  auto it = std::upper_bound(m_ring.begin(), m_ring.end(), after,
                             [](int64_t v, const Notice& n) { return v < n.seq; });
  for (; it != m_ring.end() && out->size() < max; ++it) out->push_back(*it);
  return true;
}

void ChangeHub::shutdown() {
  MutexLock lock(&m_mutex);
  m_shutdown = true;
  for (Subscription* s : m_all) signal(s, true);
  for (auto& [id, s] : m_by_operation) signal(s, true);
}

bool ChangeHub::is_shut_down() const {
  MutexLock lock(&m_mutex);
  return m_shutdown;
}

size_t ChangeHub::subscribers() const {
  MutexLock lock(&m_mutex);
  return m_all.size() + m_by_operation.size();
}

}  // namespace asyncops
