#include "store/maintenance.h"

#include "store/store_stats.h"

#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>

#include "shared/clock.h"
#include "store/pid_lock.h"
#include "store/sqlite_rows.h"
#include "store/sqlite_saga.h"
#include "store/sqlite_store.h"

namespace asyncops {
namespace {

using sqlite_rows::column_text;
using sqlite_rows::k_op_columns;

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

Status require_store(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return Error{"no store at " + path};
  return Status::success();
}

// Opens the store read-only, or says why not.
Result<std::unique_ptr<SQLite::Database>> open_readonly(const std::string& path) {
  if (auto there = require_store(path); !there) return Error{there.error()};
  try {
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY);
    db->setBusyTimeout(5000);
    return db;
  } catch (const std::exception& e) {
    return Error{"cannot open " + path + " read-only: " + e.what()};
  }
}

int64_t scalar(SQLite::Database& db, const std::string& sql, int64_t arg = INT64_MIN) {
  SQLite::Statement st(db, sql);
  if (arg != INT64_MIN) st.bind(1, static_cast<int64_t>(arg));
  if (!st.executeStep() || st.getColumn(0).isNull()) return 0;
  return st.getColumn(0).getInt64();
}

}  // namespace

std::string store_file(const std::string& data_dir) { return data_dir + "/asyncops.db"; }

Result<nlohmann::json> store_stats(const std::string& path, int64_t now) {
  auto opened = open_readonly(path);
  if (!opened) return Error{opened.error()};
  try {
    // The same document as GET /stats (store_stats.h), plus the file's path.
    nlohmann::json j = stats_json(read_operation_stats(*opened.value(), now, std::nullopt));
    j["store"] = path;
    return j;
  } catch (const std::exception& e) {
    return Error{"cannot read " + path + ": " + e.what()};
  }
}

Result<nlohmann::json> store_info(const std::string& path) {
  auto opened = open_readonly(path);
  if (!opened) return Error{opened.error()};
  SQLite::Database& db = *opened.value();
  try {
    SQLite::Transaction snapshot(db);
    std::string version;
    SQLite::Statement v(db, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (v.executeStep()) version = column_text(v, 0);
    auto time_or_null = [](int64_t ms) { return ms > 0 ? nlohmann::json(format_rfc3339_ms(ms)) : nlohmann::json(); };
    return nlohmann::json{
        {"path", path},
        {"db_bytes", file_size(path)},
        {"wal_bytes", file_size(path + "-wal")},
        {"schema_version", version},
        {"operations", scalar(db, "SELECT count(*) FROM operations")},
        {"history", scalar(db, "SELECT count(*) FROM history")},
        {"resources", scalar(db, "SELECT count(*) FROM resources")},
        {"idempotency_keys", scalar(db, "SELECT count(*) FROM idempotency")},
        {"unfinished", scalar(db, "SELECT count(*) FROM operations WHERE state IN ('pending','processing')")},
        {"oldest_created_at", time_or_null(scalar(db, "SELECT min(created_at) FROM operations"))},
        {"newest_created_at", time_or_null(scalar(db, "SELECT max(created_at) FROM operations"))}};
  } catch (const std::exception& e) {
    return Error{"cannot read " + path + ": " + e.what()};
  }
}

Result<std::vector<OperationRecord>> store_operations(const std::string& path, const OperationFilter& f) {
  if (auto opened = open_readonly(path); !opened) return Error{opened.error()};
  auto reader = SqliteStoreReader::open(path);
  if (!reader) return Error{reader.error()};
  try {
    return reader.value()->list_operations(f);
  } catch (const std::exception& e) {
    return Error{"cannot read " + path + ": " + e.what()};
  }
}

Result<std::vector<HistoryEntry>> store_history(const std::string& path, const std::string& op_id) {
  if (auto opened = open_readonly(path); !opened) return Error{opened.error()};
  try {
    auto reader = SqliteStoreReader::open(path);
    if (!reader) throw std::runtime_error(reader.error());
    if (!reader.value()->get_operation(op_id)) return Error{"no operation " + op_id + " in " + path};
    return reader.value()->history(op_id);
  } catch (const std::exception& e) {
    return Error{"cannot read " + path + ": " + e.what()};
  }
}

Result<int64_t> export_store(const std::string& path, const ExportSink& each) {
  auto opened = open_readonly(path);
  if (!opened) return Error{opened.error()};
  SQLite::Database& db = *opened.value();
  int64_t done = 0;
  try {
    SQLite::Transaction snapshot(db);  // the export is one consistent snapshot
    int64_t total = scalar(db, "SELECT count(*) FROM operations");
    SQLite::Statement ops(db, std::string("SELECT ") + k_op_columns + " FROM operations ORDER BY seq");
    SQLite::Statement hist(db, "SELECT seq, kind, state, code, message, at, step FROM history WHERE op_seq = ? ORDER BY seq");
    while (ops.executeStep()) {
      OperationRecord op = sqlite_rows::read_operation(ops);
      if (op.step_count > 0) op.steps = sqlite_saga::read_views(db, op.seq);
      // A full backup: the request, params and worker too. retry_of on the
      // retrying operation links a retry; no retries list is repeated here.
      nlohmann::json j = operation_detail_json(op, {});
      j.erase("retries");
      nlohmann::json h = nlohmann::json::array();
      hist.reset();
      hist.bind(1, static_cast<int64_t>(op.seq));
      while (hist.executeStep()) h.push_back(history_json(sqlite_rows::read_history(hist, op.id)));
      j["history"] = std::move(h);
      if (auto written = each(j, ++done, total); !written) return Error{written.error()};
    }
  } catch (const std::exception& e) {
    return Error{std::string("export failed: ") + e.what()};
  }
  return done;
}

Result<std::vector<std::string>> check_store_consistency(const std::string& path) {
  auto opened = open_readonly(path);
  if (!opened) return Error{opened.error()};
  SQLite::Database& db = *opened.value();
  std::vector<std::string> problems;
  try {
    SQLite::Transaction snapshot(db);
    SQLite::Statement ic(db, "PRAGMA integrity_check");
    while (ic.executeStep()) {
      std::string r = column_text(ic, 0);
      if (r != "ok") problems.push_back("integrity_check: " + r);
    }
    SQLite::Statement orphans(db,
                              "SELECT h.seq, h.op_seq FROM history h LEFT JOIN operations o ON o.seq = h.op_seq "
                              "WHERE o.seq IS NULL ORDER BY h.seq");
    while (orphans.executeStep()) {
      problems.push_back("history " + std::to_string(orphans.getColumn(0).getInt64()) + ": no operation with seq " +
                         std::to_string(orphans.getColumn(1).getInt64()));
    }
    SQLite::Statement unaccepted(db,
                                 "SELECT o.id FROM operations o WHERE NOT EXISTS (SELECT 1 FROM history h "
                                 "WHERE h.op_seq = o.seq AND h.kind = 'accepted') ORDER BY o.seq");
    while (unaccepted.executeStep()) {
      problems.push_back("operation " + column_text(unaccepted, 0) + ": no accepted history entry");
    }
    SQLite::Statement nocode(db,
                             "SELECT id, state FROM operations WHERE state IN ('completed','rejected','failed','canceled') "
                             "AND (code IS NULL OR code = '') ORDER BY seq");
    while (nocode.executeStep()) {
      problems.push_back("operation " + column_text(nocode, 0) + ": " + column_text(nocode, 1) + " without a code");
    }
    // A saga operation has exactly its number of steps' rows (issue 14).
    SQLite::Statement steps(db,
                            "SELECT o.id, o.steps, (SELECT count(*) FROM saga_steps s WHERE s.op_seq = o.seq) AS n "
                            "FROM operations o WHERE o.steps > 0 AND n <> o.steps");
    while (steps.executeStep()) {
      problems.push_back("operation " + column_text(steps, 0) + ": " + std::to_string(steps.getColumn(1).getInt()) +
                         " steps, but " + std::to_string(steps.getColumn(2).getInt()) + " saga_steps rows");
    }
    // Per operation, history in seq order: "accepted" comes first and the
    // times never go backwards.
    SQLite::Statement order(db,
                            "SELECT o.id, h.seq, h.kind, h.at FROM history h JOIN operations o ON o.seq = h.op_seq "
                            "ORDER BY h.op_seq, h.seq");
    std::string last_id;
    int64_t last_seq = 0, last_at = 0;
    while (order.executeStep()) {
      std::string id = column_text(order, 0), kind = column_text(order, 2);
      int64_t seq = order.getColumn(1).getInt64(), at = order.getColumn(3).getInt64();
      if (id != last_id) {
        if (parse_history_kind(kind) != HistoryKind::accepted) {
          problems.push_back("operation " + id + ": history starts with '" + kind + "', not 'accepted'");
        }
      } else {
        if (seq <= last_seq) problems.push_back("operation " + id + ": history seq " + std::to_string(seq) + " does not increase");
        if (at < last_at) problems.push_back("operation " + id + ": history seq " + std::to_string(seq) + " is earlier than the one before");
      }
      last_id = id;
      last_seq = seq;
      last_at = at;
    }
  } catch (const std::exception& e) {
    return Error{"cannot check " + path + ": " + e.what()};
  }
  return problems;
}

Result<int64_t> prune_store(const std::string& path, int64_t before_ms, int batch,
                            const std::function<void(int64_t)>& progress) {
  if (auto there = require_store(path); !there) return Error{there.error()};
  auto writer = SqliteStoreWriter::open(path, SyncMode::normal);
  if (!writer) return Error{writer.error()};
  int64_t total = 0;
  try {
    for (;;) {
      writer.value()->begin();
      int n = writer.value()->prune(before_ms, batch);
      writer.value()->commit();
      total += n;
      if (progress) progress(total);
      if (n < batch) break;
    }
  } catch (const std::exception& e) {
    writer.value()->rollback();
    return Error{std::string("prune failed: ") + e.what()};
  }
  return total;
}

Result<VacuumResult> vacuum_store(const std::string& data_dir) {
  VacuumResult r;
  r.path = store_file(data_dir);
  if (auto there = require_store(r.path); !there) return Error{there.error()};
  // The daemon holds an exclusive flock on its pid file for its whole life.
  // Taking it here both proves the daemon is down and keeps one from
  // starting until VACUUM is done. A pid file that was there (a daemon
  // that did not stop cleanly) stays, so that its next start checks the
  // store; one made here goes.
  std::string pid_path = data_dir + "/asyncopsd.pid";
  PidLock lock;
  if (auto locked = lock.acquire(pid_path, /*record_pid=*/false); !locked) {
    if (lock.held_elsewhere()) {
      return Error{"asyncopsd is running on " + data_dir + " (" + pid_path + " is locked); stop it before vacuum"};
    }
    return Error{locked.error()};
  }
  if (lock.found_stale()) lock.keep_file();
  r.bytes_before = file_size(r.path) + file_size(r.path + "-wal");
  try {
    SQLite::Database db(r.path, SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    db.exec("VACUUM");
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const std::exception& e) {
    return Error{std::string("vacuum failed: ") + e.what()};
  }
  r.bytes_after = file_size(r.path) + file_size(r.path + "-wal");
  return r;
}

}  // namespace asyncops
