#pragma once
// The worker loop, as a library: a service registers its handlers and the
// loop does the rest. It announces its credit, receives commands on a DEALER,
// claims each batch and starts only what the daemon grants (docs/protocol.md
// §4a), publishes "processing", runs the handler inside a SQLite transaction
// that also records the outcome under the request id, and publishes the
// outcome. A command that comes again
// (redelivery) finds its recorded outcome and re-publishes it without
// running the handler a second time: at-least-once delivery, one effect.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"
#include "shared/liveness.h"
#include "shared/state.h"
#include "workers/service_db.h"

namespace SQLite {
class Database;
}

namespace asyncops {

struct Outcome {
  OpState state = OpState::completed;  // completed, rejected or failed
  std::string type;                    // e.g. "user_created"
  std::string code;                    // e.g. "success", "email_in_use"
  std::string message;
  std::string resource;
  nlohmann::json data;  // the resource's representation, or null
  bool deleted = false;
  // The resource's version after this write, raised by every write in the
  // same transaction (Event::version); 0 for none.
  int64_t version = 0;

  static Outcome completed(std::string type, std::string resource, nlohmann::json data);
  static Outcome removed(std::string type, std::string resource);
  static Outcome rejected(std::string type, std::string code, std::string message);
  static Outcome failed(std::string type, std::string code, std::string message);
  static Outcome canceled(std::string type, std::string message);
};

// A handler runs inside a transaction on the service's own database; what it
// writes commits together with the record of its outcome. It must not
// commit or roll back. An exception ends the operation failed/handler_error.
// db.prepare(sql) gives a statement compiled once per worker.
using Handler = std::function<Outcome(const Command&, ServiceDb&)>;

struct ExternalService;  // workers/external/external_runner.h

struct Service {
  std::string name;
  std::function<void(SQLite::Database&)> init_schema;  // idempotent
  std::map<std::string, Handler> handlers;             // command name -> handler
  // "users" for a service with handlers above; "exec" or "http" for one
  // whose handlers live outside the worker (issue 13), which then runs
  // `external` instead, several commands at once, outside any transaction.
  std::string kind = "users";
  std::shared_ptr<ExternalService> external;
  // Every handler ends within about a millisecond: it waits on nothing but
  // this service's own database. A small batch started without a claim then
  // leaves the worker's credit as it is (docs/protocol.md §4a); a handler
  // that may hold on (a remote call, a sleep) pauses it for every batch.
  bool quick = false;
};

struct WorkerOptions {
  std::string data_dir;
  std::string commands_endpoint;  // connect (DEALER); the daemon's ROUTER binds
  std::string events_endpoint;    // connect; the daemon's SUB binds
  std::string control_endpoint;   // connect; the daemon's control PUB binds ("" for none)
  std::string id;                 // default: host/pid/random
  int heartbeat_ms = 1000;
  // The credit this worker announces while idle (docs/protocol.md §4a):
  // how many commands it can start at once. The built-in loop handles one
  // batch at a time, so at most one batch (256).
  size_t credit = 256;
  LivenessOptions liveness;       // ZeroMQ heartbeats and TCP keepalive on tcp://
  // CURVE (issue 7): all set, or none. Z85 keys.
  std::string curve_public_key, curve_secret_key, curve_server_key;
};

class Worker {
 public:
  Worker(WorkerOptions options, Service service);
  // Runs until *stop becomes true. Returns the exit code.
  int run(const std::atomic<bool>& stop);

  // Handles one command against db, with the dedupe above, and returns the
  // terminal event. Exposed for tests.
  // A canceled command (cmd.cancel, or canceled = true) that was not
  // handled before ends "canceled" without running the handler.
  static Event handle(const Service& service, SQLite::Database& db, const Command& cmd,
                      const std::string& worker_id, bool canceled = false);
  // Handles several commands in as few transactions as it can (one commit,
  // one WAL write each) and returns the outcomes it recorded, in order. A
  // transaction takes no further command once it has held the write lock
  // for k_transaction_budget, so that a running worker never keeps the
  // others of its service waiting long. If a transaction fails, the outcomes
  // committed before it are returned and the rest are not recorded (left to
  // redelivery); if the first fails, it throws and nothing is recorded.
  // is_canceled and is_fenced may be empty. A fenced command that was not
  // handled before is recorded failed/worker_timeout without running. No
  // command is started at or after start_before (the end of its grant); those
  // are left out of the result, unrecorded. bodies, if given, gets each
  // outcome's encoding (encode(e).body, the text recorded), in the same order.
  static std::vector<Event> handle_batch(const Service& service, ServiceDb& db,
                                         const std::vector<Command>& cmds, const std::string& worker_id,
                                         const std::function<bool(const std::string&)>& is_canceled,
                                         const std::function<bool(const std::string&)>& is_fenced = nullptr,
                                         std::optional<std::chrono::steady_clock::time_point> start_before = std::nullopt,
                                         std::vector<std::string>* bodies = nullptr);
  // The outcomes recorded already for some of cmds, by request id, with the
  // command's attempt and this worker's id: a redelivery re-publishes them
  // without a claim (no effect can follow). Unreadable records are left out.
  static std::map<std::string, Event> recorded_outcomes(ServiceDb& db, const std::vector<Command>& cmds,
                                                        const std::string& worker_id);
  // Records failed/worker_timeout under each request id that has no outcome
  // yet, in one transaction: the daemon gave up on them (a fence notice),
  // so no worker sharing db may run them afterwards. Throws if the
  // transaction fails (e.g. the lock is held past k_lock_wait_ms).
  static void record_fences(ServiceDb& db, const std::vector<std::string>& request_ids,
                            const std::string& worker_id);
  // Records e as the outcome of its request, inside the caller's
  // transaction: over any earlier record (replace), or only where there is
  // none (keep_first: an outcome recorded first stands).
  enum class Recording { replace, keep_first };
  static void record_outcome(ServiceDb& db, const Event& e, Recording how);
  // The same for an event already encoded (body: encode(e).body).
  static void record_outcome(ServiceDb& db, const std::string& request_id, const std::string& body, Recording how);
  // Sets up a service database: WAL, the busy timeout below, the dedupe
  // table and the service's schema; and the connection, as below.
  static void init_database(const Service& service, SQLite::Database& db);
  // Sets up one connection that writes a service database: the busy
  // timeout below, and SQLite's automatic checkpoint moved out to 4 ×
  // k_wal_limit_pages, because run()'s Checkpointer thread does that work.
  // Done inside a COMMIT, every 1,000 pages by default, it held that
  // batch's outcomes for milliseconds: 13 of 2,000 operations at 200/s
  // took over 1 ms in the worker, against 2 without it (bench/RESULTS.md,
  // issue 11).
  static void set_up_connection(SQLite::Database& db);
  // The WAL of a service database is kept near this many frames, SQLite's
  // own default. The store's 16,384 let it grow to 120-144 MB here in a
  // 20,000-operation run: two worker processes writing in turns keep the
  // between-batches checkpoint from completing, so it grew to the safety
  // net; at 1,000 it stayed at 23-29 MB, with the same CPU per operation.
  static constexpr int k_wal_limit_pages = 1000;

  // How long a worker waits for its service database's write lock before it
  // gives up on the batch (nothing recorded; the commands are redelivered).
  // A worker that holds the lock and is stopped (SIGSTOP) or hangs cannot
  // release it, so the others must fail fast rather than wait for it.
  static constexpr int k_lock_wait_ms = 2000;
  // A command started without a claim (protocol §4a) is started only
  // before T + lease_ms - this, where T is when the `ready` it names went
  // out: 1 % of the lease for the two clocks' rates, and 10 ms.
  static constexpr int64_t start_margin_ms(int64_t lease_ms) { return lease_ms / 100 + 10; }
  // How long one transaction of handle_batch takes new commands.
  static constexpr int k_transaction_budget_ms = 250;
  // A batch of a quick service started without a claim announces credit 0
  // first only from this many commands on (protocol §4a).
  static constexpr size_t k_pause_batch = 8;

 private:
  static Event handle_in_transaction(const Service& service, ServiceDb& db, const Command& cmd,
                                     const std::string& worker_id, bool canceled, bool fenced, std::string* body);
  WorkerOptions m_options;
  Service m_service;
};

// The terminal event for o as a handler of cmd recorded it.
Event make_outcome_event(const Outcome& o, const Command& cmd, const std::string& worker_id);
// Whether that event is within the event limits (docs/protocol.md, "Limits").
Status check_outcome_limits(const Outcome& o, const Command& cmd, const std::string& worker_id);
// What a worker records for a request the daemon gave up on (a fence).
Outcome fenced_outcome();

// The built-in services, by name; nullptr for an unknown name.
const Service* find_service(const std::string& name);

}  // namespace asyncops
