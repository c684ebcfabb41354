#pragma once
// The SQLite backend of the store (store/store.h): one file in WAL mode,
// its schema, the write connection, read-only connections and the
// Checkpointer that keeps the WAL short. Only the daemon's wiring, the
// store's maintenance functions (store/maintenance.h) and tests include
// this file; SQLite's own headers stay in the .cpp.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "shared/result.h"
#include "store/checkpointer.h"
#include "store/store.h"

namespace asyncops {

// Opens (creating if needed) the store at path and brings its schema up to
// date. Every connection opened by this module sets WAL and the sync mode.
Status init_store(const std::string& path, SyncMode sync);

class SqliteStoreWriter final : public StoreWriter {
 public:
  // init_store, then the write connection.
  static Result<std::unique_ptr<SqliteStoreWriter>> open(const std::string& path, SyncMode sync);
  ~SqliteStoreWriter() override;

  // The WAL is kept near this many frames (see want_wal_restart). The
  // writer checkpoints on its own only past four times as many, a safety
  // net for a Checkpointer that cannot keep up (set_wal_limit_pages).
  static constexpr int k_wal_limit_pages = asyncops::k_wal_limit_pages;
  void set_wal_limit_pages(int pages);
  // Thread-safe. Asks the writer to checkpoint after its next commit: the
  // Checkpointer calls it when the WAL has grown past k_wal_limit_pages
  // right after copying it back, so the few frames committed since are all
  // the writer copies. That checkpoint completes (no writer can append
  // meanwhile), so the next transaction starts the WAL from its beginning.
  void want_wal_restart() override { m_wal_restart.store(true, std::memory_order_relaxed); }
  uint64_t wal_restarts() const { return m_wal_restarts.load(); }

  void begin() override;
  void commit() override;
  void rollback() override;
  Change insert_operation(OperationRecord* op) override;
  std::variant<Change, IdempotentReplay> insert_operation(OperationRecord* op, const IdempotencyKey* key,
                                                          StoredTexts* texts = nullptr) override;
  bool owners_allow(const std::string& owner, const OwnershipCheck& check) override;
  void claim_resource(const std::string& path, const std::string& owner, int64_t op_seq) override;
  Applied apply_event(const Event& e, int64_t now, Change* change, const EventSender& sender = {}) override;
  Applied apply_dispatched(const std::string& op_id, int attempt, int64_t now, Change* change) override;
  Applied request_cancel(const std::string& op_id, int64_t now, Change* change) override;
  int prune(int64_t before_ms, int limit) override;
  Applied forget(const std::string& op_id) override;
  int64_t count_unfinished() override;
  int64_t latest_history_seq() override;
  // meta 'probed_at' = now.
  void write_probe(int64_t now) override;
  // PRAGMA max_page_count on this connection (SQLITE_FULL past it).
  void set_max_page_count(int64_t pages) override;
  std::vector<OperationRecord> unfinished(int limit, int64_t after_seq) override;
  SagaApplied start_saga(const OperationRecord& op, const std::vector<saga::StepPlan>& plan, int64_t now) override;
  SagaApplied apply_step_event(const Event& e, int64_t now, const EventSender& sender = {}) override;
  SagaApplied apply_step_gave_up(const std::string& request_id, int attempts, int64_t now) override;
  SagaApplied request_saga_cancel(const std::string& op_id, int64_t now) override;
  SagaApplied resume_saga(const std::string& op_id, int default_max_attempts, int64_t now) override;

 private:
  SqliteStoreWriter();
  // Writes a completed event's resource to the read model (apply_event, and
  // a saga's last step), freeing the owner of a path it deletes.
  void write_read_model(const OperationRecord& op, const Event& e, int64_t now);
  // Writes decision d about op's saga `before`: the steps that changed, the
  // operation's row, one history entry per note (each Change with the
  // operation's state as of that note); the commands of d.dispatch, built
  // from full (op with params and payload; read when null and needed).
  SagaApplied write_saga_decision(OperationRecord op, const saga::SagaState& before, const saga::SagaDecision& d,
                                  int64_t now, const std::string& worker, const OperationRecord* full);
  // apply_dispatched of a step's or compensation's request id.
  Applied apply_step_dispatched(const saga::StepRef& ref, int attempt, int64_t now, Change* change);
  void forget_seq(int64_t seq);  // a terminal operation only (the writer caches unfinished ones)
  struct Impl;
  std::atomic<bool> m_wal_restart{false};
  std::atomic<uint64_t> m_wal_restarts{0};
  std::unique_ptr<Impl> m;
};

class SqliteStoreReader final : public StoreReader {
 public:
  // A read-only connection; never blocks the writer (WAL).
  static Result<std::unique_ptr<SqliteStoreReader>> open(const std::string& path);
  ~SqliteStoreReader() override;

  std::optional<OperationRecord> get_operation(const std::string& id) override;
  std::vector<OperationRecord> list_operations(const OperationFilter& f) override;
  std::vector<HistoryEntry> history(const std::string& op_id) override;
  std::vector<std::string> retries_of(const std::string& op_id) override;
  OperationStats stats(int64_t now, const std::optional<std::string>& owner, int window_s = 10) override;
  std::vector<Change> changes_after(int64_t after, int limit, const std::string& op_id = "") override;
  std::optional<std::pair<std::string, std::string>> idempotency_key(const std::string& owner,
                                                                     const std::string& key) override;
  std::optional<Resource> get_resource(const std::string& path) override;
  std::vector<Resource> list_resources(const std::string& collection, const std::string& after, int limit,
                                       const std::optional<std::string>& owner = std::nullopt) override;

 private:
  SqliteStoreReader();
  struct Impl;
  std::unique_ptr<Impl> m;
};

// Opens SqliteStoreReaders of the store at path, for a ReaderPool.
ReaderOpener sqlite_reader_opener(std::string path);

}  // namespace asyncops
