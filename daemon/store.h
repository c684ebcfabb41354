#pragma once
// The daemon's SQLite store: operations, their append-only history, and the
// read model of resources that events keep current. One file in WAL mode.
//
// Threading: a StoreWriter is used by the group-commit thread alone. Every
// other thread reads through a StoreReader taken from a ReaderPool; readers
// never block the writer (WAL).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/envelope.h"
#include "shared/result.h"
#include "shared/state.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace asyncops {

enum class SyncMode { normal, full };
bool parse_sync_mode(const std::string& s, SyncMode* out);

struct OperationRecord {
  int64_t seq = 0;  // acceptance order; assigned by the store
  std::string id;
  std::string name;
  std::string service;
  OpState state = OpState::pending;
  std::string code;
  std::string message;
  std::string resource;
  std::string origin;
  std::string owner;
  nlohmann::json params = nlohmann::json::object();
  nlohmann::json payload = nlohmann::json::object();
  int attempt = 0;
  int64_t created_at = 0;  // ms since epoch
  int64_t updated_at = 0;
  bool cancel_requested = false;
};

// An Idempotency-Key, scoped to its owner, with a hash of the request it
// was first used with.
struct IdempotencyKey {
  std::string owner;
  std::string key;
  std::string request_hash;
};

// The operations columns, in the order read_operation_row() reads them, for
// tools that run their own queries over the store (asyncops store export).
const char* operation_columns();
OperationRecord read_operation_row(SQLite::Statement& st);

// The public JSON of an operation (see the OpenAPI file).
nlohmann::json operation_json(const OperationRecord& op);
// The same, as text, written without building the tree: for the 202 body,
// waits and change notices (operation_json(op).dump() gives the same bytes).
std::string operation_json_text(const OperationRecord& op);
// The command a worker receives for op.
Command command_for(const OperationRecord& op);
// The same, moving op's params and payload into the command (op keeps
// empty objects): for the commit path, which has no further use for them.
Command take_command(OperationRecord& op);

struct HistoryEntry {
  int64_t seq = 0;  // one increasing sequence across all operations
  std::string op_id;
  std::string kind;  // accepted, dispatched, redelivered, processing, cancel_requested, a terminal state, or superseded
  OpState state = OpState::pending;
  std::string code;
  std::string message;
  int64_t at = 0;
};

// One change to one operation, as committed: what notifications carry.
// The public JSON of a history entry: {seq, kind, state, code, message, at}.
nlohmann::json history_json(const HistoryEntry& h);

struct Change {
  int64_t seq = 0;   // the history entry's seq
  std::string kind;  // the history entry's kind
  OperationRecord op;
};

struct OperationFilter {
  std::optional<OpState> state;
  std::string name;
  int64_t since_ms = 0;      // created_at >= since_ms when > 0
  int64_t before_seq = 0;    // keyset cursor: seq < before_seq when > 0
  std::optional<std::string> owner;  // only this owner's operations when set
  int limit = 50;
};

struct Resource {
  std::string path;
  nlohmann::json body;
  int64_t updated_at = 0;
  // The principal that created it (resource_owners), fixed at the create's
  // accept and never moved by a later write; "" when nobody owns it (then
  // only an admin may read an owner-only resource).
  std::string owner;
};

// Whether event e may replace op's terminal state: only the daemon's give-up
// (failed/worker_timeout) can be replaced, and only by a worker's terminal
// outcome for that request that says something else (issue 15: the final
// state never contradicts what the service recorded).
bool may_supersede(const OperationRecord& op, const Event& e);

// Who may command a resource (issue 15). A resource is owned by the
// principal whose command claimed it, in the transaction that stored that
// command; a later write never moves it. The group committer checks this
// before it stores a command, in the same transaction.
struct OwnershipCheck {
  struct Path {
    std::string path;
    // A path nobody owns does not exist: its ids are generated at accept,
    // so only a create can give it an owner. Otherwise it is free.
    bool unowned_is_unknown = false;
  };
  // Each must be owned by the operation's owner (or be free); empty for an
  // admin or the local operator, who may command anything.
  std::vector<Path> paths;
  // Recorded as the operation owner's once it is stored, unless it is
  // owned already; "" claims nothing.
  std::string claim;
};

// Opens (creating if needed) the store at path and brings its schema up to
// date. Every connection opened by this module sets WAL and the sync mode.
Result<bool> init_store(const std::string& path, SyncMode sync);

class StoreWriter {
 public:
  static Result<std::unique_ptr<StoreWriter>> open(const std::string& path, SyncMode sync);
  ~StoreWriter();

  // The WAL is kept near this many frames (see want_wal_restart). The
  // writer checkpoints on its own only past four times as many, a safety
  // net for a Checkpointer that cannot keep up (set_wal_limit_pages).
  static constexpr int k_wal_limit_pages = 16384;  // 64 MiB of 4 KiB pages
  void set_wal_limit_pages(int pages);
  // Thread-safe. Asks the writer to checkpoint after its next commit: the
  // Checkpointer calls it when the WAL has grown past k_wal_limit_pages
  // right after copying it back, so the few frames committed since are all
  // the writer copies. That checkpoint completes (no writer can append
  // meanwhile), so the next transaction starts the WAL from its beginning.
  void want_wal_restart() { m_wal_restart.store(true, std::memory_order_relaxed); }
  uint64_t wal_restarts() const { return m_wal_restarts.load(); }

  void begin();
  void commit();
  void rollback();

  // Inside a transaction. Assigns op->seq and appends the "accepted" entry.
  Change insert_operation(OperationRecord* op);
  // The same, claiming an idempotency key first (key may be null). When the
  // key is already taken, writes nothing, returns false and sets out->op.id
  // to the first request's operation and out->op.message to its hash.
  // Otherwise op's params and payload move into out->op (no tree copy on
  // the commit path); the rest of op is copied.
  bool insert_operation(OperationRecord* op, const IdempotencyKey* key, Change* out);

  // Inside a transaction. Whether owner may command every path of check
  // (see OwnershipCheck); reads only.
  bool owners_allow(const std::string& owner, const OwnershipCheck& check);
  // Inside a transaction. Records owner as path's owner, claimed by the
  // operation op_seq, unless the path is owned already.
  void claim_resource(const std::string& path, const std::string& owner, int64_t op_seq);

  // rejected: the event is not one this operation allows (it names another
  // resource than the operation's); nothing changes.
  // late: a terminal outcome from an attempt older than the one that ended
  // the operation; nothing changes but a history entry "late_outcome" (in
  // *change, kind "late_outcome").
  enum class Applied { changed, unknown_operation, ignored, rejected, late };
  // Inside a transaction. Applies a worker's event: moves the operation
  // forward (never backwards, never out of a terminal state except as
  // may_supersede() allows: history kind "superseded") and, for a completed
  // event, updates the read model in the same transaction. The read model
  // keeps the write with the highest Event::version, or, when either write
  // has none, the one from the operation accepted last. A completed delete
  // whose tombstone is written frees its path's owner; an operation that
  // ends rejected or canceled frees the resource it claimed (it was not made).
  Applied apply_event(const Event& e, int64_t now, Change* change);

  // Inside a transaction. Records that the command went to a worker (kind
  // "dispatched", or "redelivered" for attempt > 1) if the operation is
  // still pending; a worker may already have reported it processing.
  Applied apply_dispatched(const std::string& op_id, int attempt, int64_t now, Change* change);

  // Inside a transaction. Marks a non-terminal operation cancel-requested
  // (history kind "cancel_requested"); ignored if terminal or already asked.
  Applied request_cancel(const std::string& op_id, int64_t now, Change* change);

  // Inside a transaction. Deletes at most limit terminal operations last
  // changed before before_ms, with their history and keys. Returns how many.
  int prune(int64_t before_ms, int limit);
  // Inside a transaction. Deletes one terminal operation ("no longer
  // interested"); ignored if it is not terminal.
  Applied forget(const std::string& op_id);

  int64_t count_unfinished();

  // The newest history seq, 0 for an empty store.
  int64_t latest_history_seq();

  // Inside a transaction. Writes one small row (meta 'probed_at' = now):
  // a commit that needs space, run while commits are failing to learn when
  // they succeed again (the daemon's readiness, daemon/store_health.h).
  void write_probe(int64_t now);
  // PRAGMA max_page_count on this connection: writes that would grow the
  // file past `pages` fail with SQLITE_FULL. For tests of a full disk.
  void set_max_page_count(int64_t pages);

  // Operations not yet terminal, oldest first, for redispatch after a restart.
  std::vector<OperationRecord> unfinished(int limit, int64_t after_seq);

 private:
  StoreWriter();
  void forget_seq(int64_t seq);  // a terminal operation only (the writer caches unfinished ones)
  struct Impl;
  std::atomic<bool> m_wal_restart{false};
  std::atomic<uint64_t> m_wal_restarts{0};
  std::unique_ptr<Impl> m;
};

class StoreReader {
 public:
  static Result<std::unique_ptr<StoreReader>> open(const std::string& path);
  ~StoreReader();

  std::optional<OperationRecord> get_operation(const std::string& id);
  std::vector<OperationRecord> list_operations(const OperationFilter& f);
  std::vector<HistoryEntry> history(const std::string& op_id);
  // History entries with seq > after, oldest first, each with the
  // operation as it was after that change; only op_id's when not empty.
  std::vector<Change> changes_after(int64_t after, int limit, const std::string& op_id = "");
  // (request hash, operation id) of an idempotency key, if known.
  std::optional<std::pair<std::string, std::string>> idempotency_key(const std::string& owner,
                                                                     const std::string& key);
  std::optional<Resource> get_resource(const std::string& path);
  // Resources in one collection ("/users"), by path, after the given path.
  // With owner set, only those that owner owns (resource_owners).
  std::vector<Resource> list_resources(const std::string& collection, const std::string& after,
                                       int limit, const std::optional<std::string>& owner = std::nullopt);

 private:
  StoreReader();
  struct Impl;
  std::unique_ptr<Impl> m;
};

// Checkpointer: copies the WAL back into the database file every interval,
// on its own thread and connection, so that the group-commit thread never
// stops to checkpoint. The writer turns SQLite's automatic checkpoints off.
class Checkpointer {
 public:
  // on_large_wal runs on the checkpointer's thread after a checkpoint that
  // leaves more than wal_limit_pages frames in the WAL (it is not reset
  // while a writer keeps appending); the daemon hands it to the writer.
  Checkpointer(std::string path, std::chrono::milliseconds interval = std::chrono::seconds(1),
               std::function<void()> on_large_wal = nullptr, int wal_limit_pages = StoreWriter::k_wal_limit_pages);
  ~Checkpointer();
  void start();
  void stop();
  uint64_t checkpoints() const { return m_checkpoints.load(); }

 private:
  std::string m_path;
  std::chrono::milliseconds m_interval;
  std::function<void()> m_on_large_wal;
  int m_wal_limit_pages;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  bool m_stopping = false;  // GUARDED_BY(m_mutex)
  std::atomic<uint64_t> m_checkpoints{0};
  std::thread m_thread;
};

// A bounded set of StoreReaders shared by the HTTP threads. acquire() hands
// one out for the caller's exclusive use; the Lease returns it.
class ReaderPool {
 public:
  // At most max_open connections exist at once; acquire() waits for one
  // when all are in use, so a thousand woken streams cannot exhaust fds.
  explicit ReaderPool(std::string path, size_t max_open = 32) : m_path(std::move(path)), m_max_open(max_open) {}

  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<StoreReader> r) : m_pool(pool), m_reader(std::move(r)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (m_reader) m_pool->release(std::move(m_reader));
    }
    StoreReader* operator->() { return m_reader.get(); }

   private:
    ReaderPool* m_pool;
    std::unique_ptr<StoreReader> m_reader;
  };

  // Throws std::runtime_error if a new connection cannot be opened.
  Lease acquire();

 private:
  void release(std::unique_ptr<StoreReader> r);
  std::string m_path;
  const size_t m_max_open;
  std::mutex m_mutex;
  std::condition_variable m_released;
  std::vector<std::unique_ptr<StoreReader>> m_idle;  // GUARDED_BY(m_mutex)
  size_t m_open = 0;                                 // GUARDED_BY(m_mutex)
};

}  // namespace asyncops
