#include "daemon/tickets.h"

namespace asyncops {

std::optional<std::string> TicketBook::issue(const TicketGrant& grant, Clock::time_point now) {
  // new_token() is "aot_" + 43 base64url characters; a ticket looks
  // different so that it is never mistaken for (or logged as) a token.
  std::string ticket = "aotk_" + new_token().substr(4);
  std::string hash = sha256_hex(ticket);
  MutexLock lock(&m_mutex);
  if (m_by_hash.size() >= k_max_outstanding) drop_expired(now);
  if (m_by_hash.size() >= k_max_outstanding) return std::nullopt;
  m_by_hash[hash] = Entry{grant, now + k_lifetime};
  return ticket;
}

std::optional<TicketGrant> TicketBook::redeem(const std::string& ticket, Clock::time_point now) {
  if (ticket.size() > 128) return std::nullopt;
  std::string hash = sha256_hex(ticket);
  MutexLock lock(&m_mutex);
  auto it = m_by_hash.find(hash);
  if (it == m_by_hash.end()) return std::nullopt;
  Entry e = std::move(it->second);
  m_by_hash.erase(it);
  if (now >= e.expires) return std::nullopt;
  return e.grant;
}

size_t TicketBook::outstanding() const {
  MutexLock lock(&m_mutex);
  return m_by_hash.size();
}

void TicketBook::drop_expired(Clock::time_point now) {
  for (auto it = m_by_hash.begin(); it != m_by_hash.end();) {
    it = now >= it->second.expires ? m_by_hash.erase(it) : std::next(it);
  }
}

}  // namespace asyncops
