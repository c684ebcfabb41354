#include "daemon/credit.h"

#include <set>

namespace asyncops {

void WorkerCredits::ready(const std::string& peer, const std::string& worker, int64_t credit, Clock::time_point now,
                          int64_t seq) {
  auto it = m_peers.find(peer);
  if (it == m_peers.end()) {
    if (m_peers.size() >= k_max_peers) return;
    it = m_peers.emplace(peer, Peer{}).first;
  }
  it->second.worker = worker;
  it->second.credit = credit < 0 ? 0 : credit;
  it->second.heard = now;
  if (seq > it->second.last_seq) it->second.last_seq = seq;
}

int64_t WorkerCredits::last_seq(const std::string& peer) const {
  auto it = m_peers.find(peer);
  return it == m_peers.end() ? 0 : it->second.last_seq;
}

std::optional<std::string> WorkerCredits::pick() const {
  const std::string* best = nullptr;
  int64_t best_free = 0;
  uint64_t best_sent = 0;
  for (const auto& [id, p] : m_peers) {
    int64_t free = p.credit - p.holding;
    if (free <= 0) continue;
    if (!best || free > best_free || (free == best_free && p.last_sent < best_sent)) {
      best = &id;
      best_free = free;
      best_sent = p.last_sent;
    }
  }
  if (!best) return std::nullopt;
  return *best;
}

void WorkerCredits::sent(const std::string& peer) {
  auto it = m_peers.find(peer);
  if (it == m_peers.end()) return;
  it->second.holding++;
  it->second.last_sent = ++m_sends;
}

void WorkerCredits::released(const std::string& peer) {
  auto it = m_peers.find(peer);
  if (it == m_peers.end() || it->second.holding == 0) return;
  it->second.holding--;
}

std::string WorkerCredits::forget(const std::string& peer) {
  auto it = m_peers.find(peer);
  if (it == m_peers.end()) return "";
  std::string worker = it->second.worker;
  m_peers.erase(it);
  return worker;
}

std::vector<std::string> WorkerCredits::forget_silent(Clock::time_point now, Clock::duration silence) {
  std::vector<std::string> gone;
  for (auto it = m_peers.begin(); it != m_peers.end();) {
    if (now - it->second.heard > silence) {
      gone.push_back(it->second.worker);
      it = m_peers.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

int64_t WorkerCredits::free_credit() const {
  int64_t n = 0;
  for (const auto& [id, p] : m_peers) n += std::max<int64_t>(0, p.credit - p.holding);
  return n;
}

int64_t WorkerCredits::holding(const std::string& peer) const {
  auto it = m_peers.find(peer);
  return it == m_peers.end() ? 0 : it->second.holding;
}

GrantMessage decide_claims(const ClaimMessage& claim, const std::string& peer, int64_t lease_ms,
                           const std::function<const LeaseView*(const std::string&)>& lookup,
                           const std::function<void(const std::string&)>& renew) {
  GrantMessage g;
  g.lease_ms = lease_ms;
  std::set<std::string> answered;
  for (const ClaimEntry& c : claim.claims) {
    if (!answered.insert(c.id).second) continue;
    const LeaseView* lease = lookup(c.id);
    // Only the attempt that holds the lease, on the connection it was sent
    // on: a copy that waited in a dead link, or an attempt that was
    // redelivered elsewhere meanwhile, must not start.
    if (lease && lease->attempt == c.attempt && lease->peer == peer) {
      renew(c.id);
      g.granted.push_back({c.id, c.attempt, lease->cancel, ""});
    } else {
      g.refused.push_back({c.id, c.attempt, false, "lease_lost"});
    }
  }
  return g;
}

}  // namespace asyncops
