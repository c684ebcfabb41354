#pragma once
// The store interface: operations, their append-only history, idempotency
// keys, resource owners and the read model of resources that events keep
// current. The gateway, the group committer, the dispatcher, the change hub
// and the streams see only this file and store/operation.h; the SQLite
// backend (store/sqlite_store.h) is chosen by the daemon's wiring alone.
// What a backend must promise is in docs/ARCHITECTURE.md, "The store".
//
// Threading: a StoreWriter is used by the group-commit thread alone. Every
// other thread reads through a StoreReader taken from a ReaderPool; readers
// never block the writer.
//
// Errors: a failing write or read throws (std::exception); the group
// committer rolls the batch back and reports it. Opening is a Result.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "shared/envelope.h"
#include "shared/result.h"
#include "store/operation.h"
#include "store/store_stats.h"

namespace asyncops {

// How durable a commit is when it is acknowledged. full: on disk before the
// writer's commit() returns; normal: may be lost with the machine (not with
// the process) (SQLite: synchronous=FULL or NORMAL in WAL mode).
enum class SyncMode { normal, full };
Result<SyncMode> parse_sync_mode(const std::string& s);

// insert_operation found its idempotency key taken: nothing was written,
// and the request is answered from the first one.
struct IdempotentReplay {
  std::string op_id;         // the first request's operation
  std::string request_hash;  // the hash the key was first used with
};

// The writing side. One instance, one thread; every method but begin(),
// commit() and rollback() runs inside a transaction the caller opened.
class StoreWriter {
 public:
  virtual ~StoreWriter() = default;

  // One transaction per group commit: everything between begin() and
  // commit() becomes visible to readers at once, or (rollback) not at all.
  virtual void begin() = 0;
  virtual void commit() = 0;
  // Safe to call without an open transaction.
  virtual void rollback() = 0;

  // Assigns op->seq and appends the "accepted" entry; op stays whole.
  virtual Change insert_operation(OperationRecord* op) = 0;
  // The same, claiming an idempotency key first (key may be null). When the
  // key is already taken, writes nothing and returns the first request.
  // Otherwise op moves into the returned change (no copy on the commit
  // path) and is left valid but unspecified.
  // texts, if given, gets the compact text of params and payload as stored
  // (their dump()), for the command sent to the workers (Command::params_text).
  struct StoredTexts {
    std::string params;
    std::string payload;
  };
  virtual std::variant<Change, IdempotentReplay> insert_operation(OperationRecord* op, const IdempotencyKey* key,
                                                                  StoredTexts* texts = nullptr) = 0;

  // Whether owner may command every path of check (see OwnershipCheck);
  // reads only.
  virtual bool owners_allow(const std::string& owner, const OwnershipCheck& check) = 0;
  // Records owner as path's owner, claimed by the operation op_seq, unless
  // the path is owned already.
  virtual void claim_resource(const std::string& path, const std::string& owner, int64_t op_seq) = 0;

  // rejected: the event is not one this operation allows (it names another
  // resource than the operation's); nothing changes.
  // late: a terminal outcome from an attempt older than the one that ended
  // the operation; nothing changes but a history entry "late_outcome" (in
  // *change, kind "late_outcome").
  enum class Applied { changed, unknown_operation, ignored, rejected, late };
  // Applies a worker's event: moves the operation forward (never
  // backwards, never out of a terminal state except as may_supersede()
  // allows: history kind "superseded") and, for a completed event, updates
  // the read model in the same transaction. The read model keeps the write
  // with the highest Event::version, or, when either write has none, the
  // one from the operation accepted last. A completed delete whose
  // tombstone is written frees its path's owner; an operation that ends
  // rejected or canceled frees the resource it claimed (it was not made).
  // An event whose sender may not serve the operation's service is rejected,
  // and so is one naming a saga operation's own id (only its steps' ids are
  // sent: apply_step_event).
  virtual Applied apply_event(const Event& e, int64_t now, Change* change, const EventSender& sender = {}) = 0;

  // Records that the command went to a worker (kind "dispatched", or
  // "redelivered" for attempt > 1) if the operation is still pending; a
  // worker may already have reported it processing. For a saga's step or
  // compensation request id: raises that step's (or compensation's)
  // attempt while it is in flight, and a redelivery (attempt > 1) appends
  // step_redelivered / compensation_redelivered.
  virtual Applied apply_dispatched(const std::string& op_id, int attempt, int64_t now, Change* change) = 0;

  // Marks a non-terminal operation cancel-requested (history kind
  // "cancel_requested"); ignored if terminal or already asked, or a saga
  // (request_saga_cancel).
  virtual Applied request_cancel(const std::string& op_id, int64_t now, Change* change) = 0;

  // ---- Sagas (issue 14; docs/design/sagas.md §4, §8). The logic is the
  // pure saga::next/saga::resume; a backend loads a saga's state (the
  // operation's row and its steps' rows), applies the input and writes what
  // changed, all in the caller's transaction: a step's outcome and the next
  // step or compensation it causes commit together, or neither does.
  struct SagaApplied {
    // changed: written; unknown_operation: no such saga; ignored: the input
    // changes nothing (a duplicate, late, or never-sent step); rejected: the
    // sender may not serve the step's service, nothing written.
    Applied applied = Applied::ignored;
    std::vector<Change> changes;    // one per history entry written, in order
    // To hand to the dispatcher after the commit. resume_saga may return
    // resends with applied ignored: nothing to write, but all to send.
    std::vector<Command> commands;
    std::vector<std::string> cancel;  // step request ids for the dispatcher's cancel decision
    // The last step completed naming a resource other than the operation's:
    // the step and the saga completed, the read model was not written; the
    // caller counts and logs it as a rejected event.
    bool resource_refused = false;
  };
  // In the accept transaction, right after insert_operation(op) (op.seq set,
  // with its params and payload): writes the plan's rows (every step
  // waiting) and starts the saga: step 1 pending, history step_dispatched,
  // its command in commands.
  virtual SagaApplied start_saga(const OperationRecord& op, const std::vector<saga::StepPlan>& plan, int64_t now) = 0;
  // A worker's event whose request_id names a step or compensation
  // (saga::parse_step_request_id). The sender must be allowed the step's
  // service. A last step's completion writes the read model as apply_event
  // does, for the operation's own resource only.
  virtual SagaApplied apply_step_event(const Event& e, int64_t now, const EventSender& sender = {}) = 0;
  // The dispatcher's last lease for a step or compensation request id ran
  // out after `attempts` attempts: a step settles, a compensation fails.
  virtual SagaApplied apply_step_gave_up(const std::string& request_id, int attempts, int64_t now) = 0;
  // A client's cancel of a saga operation (instead of request_cancel).
  virtual SagaApplied request_saga_cancel(const std::string& op_id, int64_t now) = 0;
  // After a restart: saga::resume of one unfinished saga; writes what it
  // changed (steps whose attempts ran out) and returns what to send again.
  virtual SagaApplied resume_saga(const std::string& op_id, int default_max_attempts, int64_t now) = 0;

  // Deletes at most limit terminal operations last changed before
  // before_ms, with their history, keys and saga steps. Returns how many.
  virtual int prune(int64_t before_ms, int limit) = 0;
  // Deletes one terminal operation ("no longer interested"); ignored if it
  // is not terminal.
  virtual Applied forget(const std::string& op_id) = 0;

  virtual int64_t count_unfinished() = 0;

  // The newest history seq, 0 for an empty store. Seqs never go back and
  // are never used twice, even after pruning.
  virtual int64_t latest_history_seq() = 0;

  // Writes one small record (now): a commit that needs space, run while
  // commits are failing to learn when they succeed again (the daemon's
  // readiness, daemon/store_health.h).
  virtual void write_probe(int64_t now) = 0;
  // Caps the store's size: writes that would grow it past `pages` (of the
  // backend's page size) fail as on a full disk. For tests of a full disk.
  virtual void set_max_page_count(int64_t pages) = 0;
  // Thread-safe. A hint from the backend's own housekeeping thread (for
  // SQLite, the Checkpointer): tidy the log after the next commit. A
  // backend without such a log ignores it.
  virtual void want_wal_restart() {}

  // Operations not yet terminal with seq > after_seq, oldest first, for
  // redispatch after a restart.
  virtual std::vector<OperationRecord> unfinished(int limit, int64_t after_seq) = 0;
};

// The reading side: a consistent, read-only view per call. One thread at a
// time uses an instance (a ReaderPool lease).
class StoreReader {
 public:
  virtual ~StoreReader() = default;

  virtual std::optional<OperationRecord> get_operation(const std::string& id) = 0;
  // Newest first (seq descending).
  virtual std::vector<OperationRecord> list_operations(const OperationFilter& f) = 0;
  virtual std::vector<HistoryEntry> history(const std::string& op_id) = 0;
  // The ids of the operations whose retry_of is op_id, oldest first.
  virtual std::vector<std::string> retries_of(const std::string& op_id) = 0;
  // Counts and recent rates (store/store_stats.h) at now, in one read
  // transaction; only owner's operations when set.
  virtual OperationStats stats(int64_t now, const std::optional<std::string>& owner, int window_s = 10) = 0;
  // History entries with seq > after, oldest first, each with the
  // operation as it was after that change; only op_id's when not empty.
  virtual std::vector<Change> changes_after(int64_t after, int limit, const std::string& op_id = "") = 0;
  // (request hash, operation id) of an idempotency key, if known.
  virtual std::optional<std::pair<std::string, std::string>> idempotency_key(const std::string& owner,
                                                                             const std::string& key) = 0;
  virtual std::optional<Resource> get_resource(const std::string& path) = 0;
  // Resources in one collection ("/users"), by path, after the given path.
  // With owner set, only those that owner owns (resource_owners).
  virtual std::vector<Resource> list_resources(const std::string& collection, const std::string& after, int limit,
                                               const std::optional<std::string>& owner = std::nullopt) = 0;
};

// Opens one more reader; the backend's (for SQLite, sqlite_reader_opener).
using ReaderOpener = std::function<Result<std::unique_ptr<StoreReader>>()>;

// A bounded set of StoreReaders shared by the HTTP threads. acquire() hands
// one out for the caller's exclusive use; the Lease returns it.
class ReaderPool {
 public:
  // At most max_open readers exist at once; acquire() waits for one when
  // all are in use, so a thousand woken streams cannot exhaust fds.
  explicit ReaderPool(ReaderOpener open, size_t max_open = 32) : m_open_reader(std::move(open)), m_max_open(max_open) {}
  // A pool of SQLite readers of the store file at path
  // (store/sqlite_store.cpp): the daemon's and the tests' shorthand.
  explicit ReaderPool(const std::string& sqlite_path, size_t max_open = 32);

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

  // Throws std::runtime_error if a new reader cannot be opened.
  Lease acquire();

 private:
  void release(std::unique_ptr<StoreReader> r);
  ReaderOpener m_open_reader;
  const size_t m_max_open;
  std::mutex m_mutex;
  std::condition_variable m_released;
  std::vector<std::unique_ptr<StoreReader>> m_idle;  // GUARDED_BY(m_mutex)
  size_t m_open = 0;                                 // GUARDED_BY(m_mutex)
};

}  // namespace asyncops
