#pragma once
// Credit flow control and claims on the commands channel (docs/protocol.md
// §4a), apart from the sockets so that they can be tested alone.
//
// WorkerCredits: the workers of one service, each known by its connection's
// routing id, with the credit it last announced (`ready`) and how many of the
// commands sent to it are still under lease. The dispatcher sends a command
// only to a connection with free credit, so commands wait in the daemon,
// where no lease runs, rather than in a worker's queue.
//
// decide_claims: whether a worker may start the commands it claims. A claim
// is granted only while the claimed attempt holds the lease and was sent on
// the claiming connection; the daemon's own clock is the only one involved.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "shared/envelope.h"

namespace asyncops {

class WorkerCredits {
 public:
  using Clock = std::chrono::steady_clock;

  // A `ready` from peer: its credit is now `credit` (absolute); seq is its
  // `seq` (0: the worker sends none).
  void ready(const std::string& peer, const std::string& worker, int64_t credit, Clock::time_point now,
             int64_t seq = 0);
  // The highest `ready.seq` heard from peer (0: none, or unknown peer). A
  // command sent to peer carries it as `ready_seq` (protocol §4a).
  int64_t last_seq(const std::string& peer) const;
  // The connection with the most free credit (credit minus commands under
  // lease); among equals, the one that was sent to longest ago. nullopt
  // when no connection has free credit.
  std::optional<std::string> pick() const;
  // A command went to peer / a lease held by peer ended (finished, expired,
  // or moved to another attempt). Unknown peers are ignored.
  void sent(const std::string& peer);
  void released(const std::string& peer);
  // The connection is gone (EHOSTUNREACH) or silent: forget its credit.
  // Returns the worker name it announced, for the log ("" if unknown).
  std::string forget(const std::string& peer);
  // Forgets every connection whose last `ready` is older than silence;
  // returns their worker names.
  std::vector<std::string> forget_silent(Clock::time_point now, Clock::duration silence);

  size_t peers() const { return m_peers.size(); }
  int64_t free_credit() const;
  // For tests: the commands under lease on peer (0 if unknown).
  int64_t holding(const std::string& peer) const;

  // Connections kept at most; a `ready` from a new one beyond it is ignored
  // until others are forgotten.
  static constexpr size_t k_max_peers = 1024;

 private:
  struct Peer {
    std::string worker;
    int64_t credit = 0;
    int64_t holding = 0;
    Clock::time_point heard;
    uint64_t last_sent = 0;  // m_sends when it was last sent to: ties go to the oldest
    int64_t last_seq = 0;
  };
  std::map<std::string, Peer> m_peers;  // routing id -> peer
  uint64_t m_sends = 0;
};

// What the dispatcher knows of the lease on one request, for a claim.
struct LeaseView {
  int attempt = 0;
  std::string peer;     // routing id of the connection it was sent on
  bool cancel = false;  // a client asked to cancel it
};

// Answers a claim from peer. lookup(id) gives the lease held on id, or
// nullptr when there is none. renew(id) is called for each granted entry
// (the caller renews the lease). Every claimed entry appears once in the
// answer, granted or refused with reason "lease_lost"; a repeated entry is
// answered once.
GrantMessage decide_claims(const ClaimMessage& claim, const std::string& peer, int64_t lease_ms,
                           const std::function<const LeaseView*(const std::string&)>& lookup,
                           const std::function<void(const std::string&)>& renew);

}  // namespace asyncops
