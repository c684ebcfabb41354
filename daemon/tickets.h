#pragma once
// Stream tickets (issue 12): short-lived, single-use credentials that a
// browser puts in a stream's URL (`?ticket=`), where it cannot set an
// Authorization header (EventSource, WebSocket). `POST /tickets` with a
// Bearer token issues one, bound to that token's principal and role.
//
// A ticket is "aotk_" + 32 random bytes (base64url). Only its SHA-256 is
// kept, in memory, so a ticket never outlives the daemon. redeem() takes a
// ticket out as it checks it: a second use, like an expired or unknown
// ticket, is refused. Thread-safe (one mutex; a ticket is issued or
// redeemed at most once per stream, never per change).
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>

#include "daemon/auth.h"
#include "shared/mutex.h"

namespace asyncops {

struct TicketGrant {
  std::string principal;  // "" : the local operator (no tokens configured)
  std::string role;       // as ApiRequest::role: "" for the local operator
};

class TicketBook {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds k_lifetime{60};
  // At most this many unredeemed tickets; issuing one more drops the
  // expired ones, then refuses (a caller that floods gets nothing more).
  static constexpr size_t k_max_outstanding = 100000;

  // A new ticket for grant, valid for k_lifetime from now; nullopt when
  // k_max_outstanding live tickets are outstanding.
  std::optional<std::string> issue(const TicketGrant& grant, Clock::time_point now = Clock::now());
  // The grant of a live ticket, which is used up by this call; nullopt for
  // an unknown, used or expired one.
  std::optional<TicketGrant> redeem(const std::string& ticket, Clock::time_point now = Clock::now());
  size_t outstanding() const;

 private:
  struct Entry {
    TicketGrant grant;
    Clock::time_point expires;
  };
  void drop_expired(Clock::time_point now) REQUIRES(m_mutex);

  mutable Mutex m_mutex;
  std::unordered_map<std::string, Entry> m_by_hash GUARDED_BY(m_mutex);  // SHA-256 hex of the ticket
};

}  // namespace asyncops
