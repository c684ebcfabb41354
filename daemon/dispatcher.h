#pragma once
// Dispatcher: forwards committed commands to workers over a ZeroMQ ROUTER
// (one bound socket per service) and holds a lease on each until it ends.
//
// Flow control and fencing (docs/protocol.md §4a): a command goes only to a
// worker connection with free credit (its `ready`), so commands wait here,
// where no lease runs; and a worker starts a command only after the claim
// for that attempt is granted, which happens only while that attempt holds
// the lease on that connection. A send to a connection that is gone (ZeroMQ
// heartbeats closed it) fails at once and forgets that worker's credit.
//
// Delivery has no acknowledgement, so every sent command is leased: a
// command that shows no progress (a "processing" event, or a heartbeat from
// the worker naming it) within the lease is sent again with attempt+1, after
// an exponential backoff; after max_attempts the operation fails with
// worker_timeout, and a fence notice on the control socket tells the
// workers not to run it any more. Workers deduplicate by request id, so a redelivery of work
// that was done re-publishes its outcome instead of doing it twice.
//
// A command no worker can take (none connected, no free credit, or the
// service's in-flight window is full) waits in the dispatcher's backlog,
// bounded by the daemon's backlog limit; it is also safe in the store,
// which redispatches every unfinished operation after a restart.
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "daemon/cancel.h"
#include "daemon/credit.h"
#include "store/store.h"
#include "shared/envelope.h"
#include "shared/handshake_watch.h"
#include "shared/liveness.h"
#include "shared/mutex.h"
#include "shared/result.h"

namespace asyncops {

struct DispatchOptions {
  std::chrono::milliseconds lease{30000};
  int max_attempts = 5;
  std::chrono::milliseconds backoff{1000};      // before the 2nd attempt; doubles each time
  std::chrono::milliseconds max_backoff{60000};
  size_t max_in_flight = 1000;                  // per service
  LivenessOptions liveness;                     // on tcp:// command sockets
  // A connection whose last `ready` is older is forgotten (its credit).
  std::chrono::milliseconds ready_silence{3000};
};

class Dispatcher {
 public:
  struct Hooks {
    // (operation id, attempt) for each command handed to ZeroMQ.
    std::function<void(std::vector<std::pair<std::string, int>>)> on_sent;
    // A request id whose attempts ran out: (id, attempts made). The id is
    // an operation's, or a saga step's or compensation's.
    std::function<void(const std::string&, int)> on_gave_up;
    // A cancel decided (see cancel()): store it, then call done once, from
    // any thread. The workers are told only after a successful done, so
    // the store has the cancel before any event a worker sends about it.
    std::function<void(CancelDecision, CancelDone done)> on_cancel;
  };

  // endpoints: service -> endpoint to bind (a ROUTER each). control: the
  // endpoint of the PUB socket that tells workers of cancels ("" for none).
  Dispatcher(zmq::context_t& ctx, std::map<std::string, std::string> endpoints, std::string control,
             DispatchOptions options, Hooks hooks = {});
  ~Dispatcher();

  // Replaces the hooks given to the constructor. REQUIRES: before start()
  // (the composition root wires the store in this way, daemon/daemon.h).
  void set_hooks(Hooks hooks) { m_hooks = std::move(hooks); }

  // Creates and binds the sockets; called once, before start(), by the
  // thread that starts the dispatcher. The dispatcher thread owns them after.
  Status bind();
  // Set before bind(): applied to each socket before it binds (CURVE).
  std::function<void(zmq::socket_t&)> socket_setup;
  void start();
  void stop();

  // Thread-safe. New commands.
  void enqueue(std::vector<Command> commands);
  // Thread-safe. Commands left unfinished by the last run. One may have
  // reached a worker before the stop although no dispatch was recorded (the
  // record commits after the send), so a cancel never takes one back from
  // the queue as never sent: the workers are told, and a worker decides.
  void enqueue_recovered(std::vector<Command> commands);
  // Thread-safe. Committed changes: terminal ones end leases, processing
  // ones renew them. Wakes the dispatcher only when an ended lease may let
  // a waiting command go out; otherwise they are taken at its next wake-up,
  // always before it expires a lease.
  void observe(const std::vector<Change>& changes);
  // Thread-safe. A worker's heartbeat renews the leases it names.
  void heartbeat(const Heartbeat& hb);
  // Thread-safe. Ends whatever lease or waiting redelivery these request
  // ids have: their worker gave a final outcome that the store had no more
  // use for (GroupCommitter::Hooks::on_leases_ended).
  void end_leases(std::vector<std::string> ids);
  // Thread-safe; returns at once. The dispatcher thread decides
  // (daemon/cancel.h): a first attempt still queued is taken back
  // (taken_back), else the workers must be told (notify_workers). It hands
  // the decision and done to Hooks::on_cancel (without it, done(true)).
  // Once the decision is stored, for notify_workers, every attempt of the
  // command is marked, so that a resend carries `cancel`, and a cancel
  // notice is published. When it could not be stored, a command taken back
  // is queued again. A stopping dispatcher decides notify_workers.
  void cancel(const std::string& op_id, CancelDone done);

  uint64_t sent() const { return m_sent.load(); }
  uint64_t redelivered() const { return m_redelivered.load(); }
  size_t waiting() const { return m_waiting.load(); }
  size_t in_flight() const { return m_in_flight_count.load(); }
  // Entries in the deadline index: one per lease (exposed for tests).
  size_t deadline_entries() const { return m_deadline_count.load(); }
  uint64_t claims_granted() const { return m_claims_granted.load(); }
  uint64_t claims_refused() const { return m_claims_refused.load(); }
  // Worker connections forgotten: gone (EHOSTUNREACH) or silent.
  uint64_t connections_lost() const { return m_connections_lost.load(); }
  // Undecodable or unknown messages on the commands sockets.
  uint64_t bad_messages() const { return m_bad_messages.load(); }
  // Handshakes refused on the commands sockets (a wrong socket type: a
  // protocol-1 worker; or a CURVE key the ZAP handler refused).
  uint64_t handshakes_failed() const { return m_handshakes_failed.load(); }
  // Connections with credit, over all services (exposed for tests).
  size_t worker_connections() const { return m_connection_count.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  using Deadlines = std::multimap<Clock::time_point, std::string>;
  struct Lease {
    Command command;
    std::string peer;  // routing id of the connection it was sent on
    Clock::time_point deadline;
    bool cancel = false;
    Deadlines::iterator slot;  // its one entry in m_deadlines, when has_slot
    bool has_slot = false;
  };
  struct Inbox {
    std::vector<Command> commands;
    std::vector<std::string> maybe_sent;  // ids of recovered commands
    std::vector<Change> changes;
    std::vector<Heartbeat> heartbeats;
    std::vector<std::pair<std::string, CancelDone>> cancels;
    std::vector<std::string> stored_cancels;  // notify_workers decisions now stored
    std::vector<Command> taken_back;  // taken back by a cancel that could not be stored
    std::vector<std::string> ended;   // end_leases
    bool empty() const {
      return commands.empty() && maybe_sent.empty() && changes.empty() && heartbeats.empty() && cancels.empty() && stored_cancels.empty() &&
             taken_back.empty() && ended.empty();
    }
  };

  void run();
  // A command's lease: its own (a saga step's timeout), else --lease.
  std::chrono::milliseconds lease_of(const Command& c) const;
  // Whether c may be sent again after this attempt: its own max_attempts
  // (unlimited for a saga step's settle), else --max-attempts.
  bool attempts_left(const Command& c) const;
  void take(Inbox& in, Clock::time_point now);
  void expire(Clock::time_point now);
  // Sets (or moves) the lease's deadline and its entry in m_deadlines.
  void renew(Lease& lease, Clock::time_point deadline);
  // Erases the lease and its deadline entry.
  void end_lease(std::map<std::string, Lease>::iterator it);
  // The request id is done: its lease (if any) ends, its waiting
  // redeliveries are dropped, and it is no longer canceled or maybe sent.
  void finish(const std::string& id);
  void send_ready(Clock::time_point now);
  // Decides a cancel (the dispatcher thread), and hands it to on_cancel.
  void decide_cancel(const std::string& op_id, CancelDone done);
  // Hands a decision to on_cancel; once it is stored, the workers are told
  // (notify_workers), or if it is not, a command taken back returns to its
  // queue (both through the inbox). Any thread.
  void store_cancel(CancelDecision decision, std::optional<Command> taken, CancelDone done);
  // Marks every attempt of op_id to carry `cancel`, and publishes a cancel
  // notice (the dispatcher thread).
  void tell_workers(const std::string& op_id);
  // Reads `ready` and `claim` messages from the workers of every service.
  void read_workers(Clock::time_point now);
  void answer_claim(const std::string& service, const std::string& peer, const ClaimMessage& claim,
                    Clock::time_point now);
  void bad_message(const std::string& service, const std::string& why);
  void wake();
  void broadcast_cancel(const std::string& op_id);
  // Tells the workers that the daemon gave up on op_id (docs/protocol.md §7).
  void broadcast_fence(const std::string& op_id, const std::string& service);
  void publish_control(const Frames& f, const std::string& op_id);
  Clock::time_point next_wakeup(Clock::time_point now) const;

  zmq::context_t& m_ctx;
  std::map<std::string, std::string> m_endpoints;
  std::string m_control_endpoint;
  DispatchOptions m_options;
  Hooks m_hooks;
  // Owned by the dispatcher thread after start():
  std::map<std::string, zmq::socket_t> m_sockets;              // per service, ROUTER
  std::map<std::string, WorkerCredits> m_credits;              // per service
  std::vector<std::unique_ptr<HandshakeWatch>> m_watches;      // one per commands socket
  std::unique_ptr<zmq::socket_t> m_control;
  std::map<std::string, std::deque<Command>> m_ready;          // per service, to send now
  std::multimap<Clock::time_point, Command> m_delayed;         // redeliveries waiting out a backoff
  std::map<std::string, Lease> m_leases;                       // request id -> lease
  Deadlines m_deadlines;  // one entry per lease, moved when it is renewed, erased when it ends
  std::map<std::string, size_t> m_in_flight;                   // per service
  std::set<std::string> m_canceled;                            // removed before sending
  std::set<std::string> m_maybe_sent;  // recovered, until terminal: perhaps with a worker already

  Mutex m_mutex;
  Inbox m_inbox GUARDED_BY(m_mutex);
  bool m_stopping GUARDED_BY(m_mutex) = false;

  std::atomic<uint64_t> m_sent{0}, m_redelivered{0};
  std::atomic<uint64_t> m_claims_granted{0}, m_claims_refused{0}, m_connections_lost{0}, m_bad_messages{0},
      m_handshakes_failed{0};
  std::atomic<size_t> m_waiting{0}, m_in_flight_count{0}, m_deadline_count{0}, m_connection_count{0};
  int m_wake_fd = -1;  // eventfd: other threads wake the dispatcher's poll
  std::thread m_thread;
};

}  // namespace asyncops
