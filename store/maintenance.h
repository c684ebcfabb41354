#pragma once
// The store's maintenance functions, for `asyncops stats` and `asyncops
// store info|ops|history|prune|vacuum|export|check`: the store file read
// (or, for prune and vacuum, written) directly, without a daemon. Every
// function but prune and vacuum opens it read-only, which is safe while the
// daemon runs (a WAL reader never blocks the writer); each reads one
// consistent snapshot. Errors come back as one line naming the file.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/result.h"
#include "store/operation.h"

namespace asyncops {

// DATA_DIR/asyncops.db
std::string store_file(const std::string& data_dir);

// Counts by state and by command, the backlog, the oldest pending
// operation and the accept rate over the last 1 and 5 minutes, as of now:
// {store, total, by_state, by_command, backlog, oldest_pending,
//  created_last_1m, created_last_5m, rate_1m_per_second, rate_5m_per_second}.
Result<nlohmann::json> store_stats(const std::string& path, int64_t now);

// Sizes and counts: {path, db_bytes, wal_bytes, schema_version, operations,
// history, resources, idempotency_keys, unfinished, oldest_created_at,
// newest_created_at}.
Result<nlohmann::json> store_info(const std::string& path);

// Operations matching f, newest first.
Result<std::vector<OperationRecord>> store_operations(const std::string& path, const OperationFilter& f);

// The history of one operation; an error if the store has no such operation.
Result<std::vector<HistoryEntry>> store_history(const std::string& path, const std::string& op_id);

// Every operation in seq order, as its public JSON with a "history" array,
// handed to `each` with how many were handed so far (1-based) and the
// total. `each` returns an error to stop the export with it. Returns how
// many operations were exported.
using ExportSink = std::function<Status(const nlohmann::json& op, int64_t done, int64_t total)>;
Result<int64_t> export_store(const std::string& path, const ExportSink& each);

// PRAGMA integrity_check, then the store's own invariants: every history
// entry has its operation, every operation has an "accepted" entry and it
// comes first, history seqs increase and times never go back, every
// terminal operation has a code, every saga operation has one saga_steps
// row per step. Returns the problems found (empty: ok).
Result<std::vector<std::string>> check_store_consistency(const std::string& path);

// Deletes terminal operations last changed before before_ms, with their
// history and keys, in batches of `batch`, each its own transaction, so a
// running daemon's writes interleave instead of waiting. progress (may be
// null) gets the running total after each batch. Returns the total.
Result<int64_t> prune_store(const std::string& path, int64_t before_ms, int batch = 1000,
                            const std::function<void(int64_t)>& progress = nullptr);

// VACUUM, then truncates the WAL. Takes the daemon's pid lock
// (store/pid_lock.h) first, so it fails while a daemon runs on data_dir and
// keeps one from starting meanwhile.
struct VacuumResult {
  std::string path;
  int64_t bytes_before = 0;  // the file and its WAL
  int64_t bytes_after = 0;
};
Result<VacuumResult> vacuum_store(const std::string& data_dir);

}  // namespace asyncops
