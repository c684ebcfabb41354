#include "daemon/change_hub.h"

namespace asyncops {

void ChangeHub::publish(const std::vector<Change>& changes) {
  if (changes.empty()) return;
  std::vector<Notice> notices;
  notices.reserve(changes.size());
  for (const Change& c : changes) {
    Notice n;
    n.seq = c.seq;
    n.op_id = c.op.id;
    n.name = c.op.name;
    n.state = c.op.state;
    n.kind = c.seq == 0 ? "" : to_string(c.op.state);
    n.op_json = operation_json(c.op).dump();
    notices.push_back(std::move(n));
  }
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    for (Notice& n : notices) {
      if (n.seq <= m_latest) continue;
      m_latest = n.seq;
      m_ring.push_back(std::move(n));
    }
    while (m_ring.size() > m_capacity) m_ring.pop_front();
  }
  m_cv.notify_all();
}

int64_t ChangeHub::latest_seq() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_latest;
}

bool ChangeHub::notices_after(int64_t after, std::vector<Notice>* out, size_t max) const {
  std::lock_guard<std::mutex> lock(m_mutex);
  if (after >= m_latest) return true;
  if (m_ring.empty() || m_ring.front().seq > after + 1) {
    // The ring starts past what the caller needs. Sequence numbers can skip
    // (a rolled-back batch), so a gap is only certain when the ring was cut.
    if (m_ring.empty() || m_ring.size() >= m_capacity) return false;
  }
  // Binary search for the first seq > after.
  auto it = std::upper_bound(m_ring.begin(), m_ring.end(), after,
                             [](int64_t v, const Notice& n) { return v < n.seq; });
  for (; it != m_ring.end() && out->size() < max; ++it) out->push_back(*it);
  return true;
}

bool ChangeHub::wait_after(int64_t after, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(m_mutex);
  return m_cv.wait_until(lock, deadline, [&] { return m_latest > after || m_shutdown; }) &&
         m_latest > after;
}

void ChangeHub::shutdown() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_shutdown = true;
  }
  m_cv.notify_all();
}

bool ChangeHub::is_shut_down() const {
  std::lock_guard<std::mutex> lock(m_mutex);
  return m_shutdown;
}

}  // namespace asyncops
