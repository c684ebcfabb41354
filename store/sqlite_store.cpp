#include "store/sqlite_store.h"

#include "shared/log.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <stdexcept>
#include <unordered_map>

#include "shared/clock.h"
#include "shared/json_text.h"
#include "store/sqlite_rows.h"
#include "store/sqlite_saga.h"

namespace asyncops {
namespace {

using sqlite_rows::column_text;
using sqlite_rows::k_op_columns;
using sqlite_rows::read_operation;
using sqlite_rows::read_operation_by_id;

const char* k_schema = R"SQL(
CREATE TABLE IF NOT EXISTS meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operations(
  seq        INTEGER PRIMARY KEY,
  id         TEXT NOT NULL UNIQUE,
  name       TEXT NOT NULL,
  service    TEXT NOT NULL,
  state      TEXT NOT NULL,
  code       TEXT,
  message    TEXT,
  resource   TEXT NOT NULL DEFAULT '',
  origin     TEXT NOT NULL,
  owner      TEXT NOT NULL DEFAULT '',
  params     TEXT NOT NULL DEFAULT '{}',
  payload    TEXT NOT NULL DEFAULT '{}',
  attempt    INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS operations_by_state ON operations(state, seq);
CREATE INDEX IF NOT EXISTS operations_by_name ON operations(name, seq);
-- Only operations with an owner (a token's principal): without tokens every
-- owner is '', and a filter by owner repeats this WHERE term so that SQLite
-- may use the index (list_operations, store_stats.cpp). It replaced a full index,
-- operations_by_owner, which cost every accept a write for nothing when
-- tokens are off.
DROP INDEX IF EXISTS operations_by_owner;
CREATE INDEX IF NOT EXISTS operations_by_owner_set ON operations(owner, seq) WHERE owner <> '';
-- seq is one sequence across all operations and never goes back (SSE event
-- ids are seqs). A rowid is max(seq) + 1, and pruning never deletes the
-- newest row (see forget_seq), so max(seq) never falls and no seq is used
-- twice, without AUTOINCREMENT's extra write of sqlite_sequence per row.
-- (Stores made before this keep AUTOINCREMENT; both behave the same.)
CREATE TABLE IF NOT EXISTS history(
  seq     INTEGER PRIMARY KEY,
  op_seq  INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  state   TEXT NOT NULL,
  code    TEXT,
  message TEXT,
  at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS history_by_op ON history(op_seq, seq);
CREATE INDEX IF NOT EXISTS operations_by_update ON operations(updated_at) WHERE state NOT IN ('pending','processing');
-- The read model. op_seq orders writes: a change from an older command never
-- overwrites a newer one. A deleted resource keeps a tombstone (body NULL)
-- so that a late update cannot bring it back.
CREATE TABLE IF NOT EXISTS resources(
  path       TEXT PRIMARY KEY,
  collection TEXT NOT NULL,
  body       TEXT,
  op_id      TEXT NOT NULL,
  op_seq     INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency(
  owner        TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  op_seq       INTEGER NOT NULL,
  created_at   INTEGER NOT NULL,
  PRIMARY KEY(owner, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_op ON idempotency(op_seq);
-- A collection is listed by a range of its primary key (every path in it
-- starts with the collection and "/"), so no second index copies the paths.
DROP INDEX IF EXISTS resources_by_collection;
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
)SQL";

// Who owns each resource (issue 15): the principal whose command claimed
// it, written in the transaction that stored that command, so a write that
// races a still-pending create is checked too. Apart from the read model
// (whose rows follow the last write) and from operations (which retention
// prunes): neither may move or drop an owner. A completed delete frees the
// path; a claiming operation that ends rejected or canceled frees its claim.
// A store made before this table gets, once, the owner of each live
// resource's create (an operation whose path is not the resource's own)
// that retention has not pruned yet.
const char* k_owners_schema = R"SQL(
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS resource_owners(
  path   TEXT PRIMARY KEY,
  owner  TEXT NOT NULL,
  op_seq INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO resource_owners(path, owner, op_seq)
  SELECT o.resource, o.owner, min(o.seq) FROM operations o JOIN resources r ON r.path = o.resource
  WHERE r.body IS NOT NULL AND o.state NOT IN ('rejected', 'canceled')
    AND substr(o.origin, instr(o.origin, ' ') + 1) <> o.resource
    AND NOT EXISTS (SELECT 1 FROM meta WHERE key = 'resource_owners')
  GROUP BY o.resource;
INSERT OR IGNORE INTO meta(key, value) VALUES ('resource_owners', '1');
COMMIT;
)SQL";

// Everything but params and payload, for the writer's per-event lookups.
const char* k_op_light_columns =
    "seq, id, name, service, state, code, message, resource, origin, owner, NULL, NULL, "
    "attempt, created_at, updated_at, cancel_requested, retry_of, worker, steps";

std::string collection_of(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? path : path.substr(0, slash);
}

void configure(SQLite::Database& db, SyncMode sync) {
  db.setBusyTimeout(5000);
  db.exec("PRAGMA journal_mode=WAL");
  db.exec(sync == SyncMode::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
}

}  // namespace

namespace {

// op without its params and payload trees, which can be large and which
// nothing after the commit reads: they are left empty objects.
OperationRecord without_trees(const OperationRecord& op) {
  OperationRecord c;
  c.seq = op.seq;
  c.id = op.id;
  c.name = op.name;
  c.service = op.service;
  c.state = op.state;
  c.code = op.code;
  c.message = op.message;
  c.resource = op.resource;
  c.origin = op.origin;
  c.owner = op.owner;
  c.attempt = op.attempt;
  c.cancel_requested = op.cancel_requested;
  c.created_at = op.created_at;
  c.updated_at = op.updated_at;
  c.retry_of = op.retry_of;
  c.worker = op.worker;
  c.step_count = op.step_count;
  return c;
}

// The writer's binds do not copy their text: each statement is bound afresh
// before every run, and what it is bound to stays as it is until that run
// is over (a field of the record written, a local, or a static name).
void bind_text_or_null(SQLite::Statement& st, int i, const std::string& s) {
  if (s.empty()) st.bind(i); else st.bindNoCopy(i, s);
}

}  // namespace

Status init_store(const std::string& path, SyncMode sync) {
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    configure(db, sync);
    db.exec(k_schema);
    db.exec(k_owners_schema);
    // resources.version (issue 15): the service's version of the resource,
    // NULL for writes whose event carried none. Added to older stores here.
    SQLite::Statement has_version(db, "SELECT 1 FROM pragma_table_info('resources') WHERE name = 'version'");
    if (!has_version.executeStep()) db.exec("ALTER TABLE resources ADD COLUMN version INTEGER");
    // operations.retry_of (issue 16): the operation this one retries, NULL
    // for a first submission; operations.worker: the last worker that
    // reported on it. Added to older stores here (NULL for their rows).
    for (const char* column : {"retry_of", "worker"}) {
      SQLite::Statement has(db, "SELECT 1 FROM pragma_table_info('operations') WHERE name = ?");
      has.bind(1, column);
      if (!has.executeStep()) db.exec(std::string("ALTER TABLE operations ADD COLUMN ") + column + " TEXT");
    }
    db.exec("CREATE INDEX IF NOT EXISTS operations_by_retry_of ON operations(retry_of) WHERE retry_of IS NOT NULL");
    // Sagas (issue 14): saga_steps, operations.steps, history.step.
    sqlite_saga::migrate(db);
    return Status::success();
  } catch (const std::exception& e) {
    return Error{"cannot open store " + path + ": " + e.what()};
  }
}

// ---------------------------------------------------------------- writer

struct SqliteStoreWriter::Impl {
  explicit Impl(const std::string& path)
      // One thread at a time uses a connection (the writer is the commit
      // thread's; a reader is leased from the pool), so SQLite's own
      // per-call mutex is not needed.
      : db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX),
        insert_op(db, std::string("INSERT INTO operations(") +
                          "id, name, service, state, code, message, resource, origin, owner, "
                          "params, payload, attempt, created_at, updated_at, retry_of) "
                          "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        insert_history(db,
                       "INSERT INTO history(op_seq, kind, state, code, message, at, step) "
                       "VALUES (?,?,?,?,?,?,?)"),
        select_op(db, std::string("SELECT ") + k_op_light_columns + " FROM operations WHERE id = ?"),
        select_op_full(db, std::string("SELECT ") + k_op_columns + " FROM operations WHERE id = ?"),
        update_state(db,
                     "UPDATE operations SET state = ?, code = ?, message = ?, attempt = "
                     "max(attempt, ?), updated_at = ?, worker = COALESCE(?, worker) WHERE seq = ?"),
        // The service's version decides when both writes carry one (its
        // own commit order, issue 15); else the operations' acceptance order.
        upsert_resource(db,
                        "INSERT INTO resources(path, collection, body, op_id, op_seq, updated_at, version) "
                        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(path) DO UPDATE SET "
                        "body = excluded.body, op_id = excluded.op_id, op_seq = excluded.op_seq, "
                        "updated_at = excluded.updated_at, version = excluded.version WHERE "
                        "CASE WHEN excluded.version IS NOT NULL AND resources.version IS NOT NULL "
                        "THEN excluded.version > resources.version "
                        "ELSE excluded.op_seq > resources.op_seq END"),
        delete_resource(db, "DELETE FROM resources WHERE path = ?"),
        select_owner(db, "SELECT owner FROM resource_owners WHERE path = ?"),
        insert_owner(db, "INSERT INTO resource_owners(path, owner, op_seq) VALUES (?,?,?) ON CONFLICT(path) DO NOTHING"),
        free_owner(db, "DELETE FROM resource_owners WHERE path = ?"),
        free_claim(db, "DELETE FROM resource_owners WHERE path = ? AND op_seq = ?"),
        insert_key(db,
                   "INSERT INTO idempotency(owner, key, request_hash, op_seq, created_at) "
                   "VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING"),
        select_key(db,
                   "SELECT i.request_hash, o.id FROM idempotency i JOIN operations o ON o.seq = i.op_seq "
                   "WHERE i.owner = ? AND i.key = ?"),
        set_cancel(db, "UPDATE operations SET cancel_requested = 1, updated_at = ? WHERE seq = ?"),
        mark_dispatched(db,
                        "UPDATE operations SET attempt = ?, updated_at = ? WHERE seq = ?"),
        select_unfinished(db, std::string("SELECT ") + k_op_columns +
                                  " FROM operations WHERE state IN ('pending','processing') "
                                  "AND seq > ? ORDER BY seq LIMIT ?") {}

  // The operation with this id, without params and payload.
  std::optional<OperationRecord> find(const std::string& id) {
    if (!unwritten.empty()) {
      if (auto it = unwritten.find(id); it != unwritten.end()) return it->second.op;
    }
    if (auto it = live.find(id); it != live.end()) return it->second;
    return read_operation_by_id(select_op, id);
  }

  int64_t append_history(int64_t op_seq, HistoryKind kind, OpState state, const std::string& code,
                         const std::string& message, int64_t at, const std::string& step = "") {
    insert_history.reset();
    insert_history.bind(1, static_cast<int64_t>(op_seq));
    insert_history.bindNoCopy(2, to_string(kind));
    insert_history.bindNoCopy(3, to_string(state));
    bind_text_or_null(insert_history, 4, code);
    bind_text_or_null(insert_history, 5, message);
    insert_history.bind(6, static_cast<int64_t>(at));
    bind_text_or_null(insert_history, 7, step);
    insert_history.exec();
    return db.getLastInsertRowid();
  }

  // Unfinished operations by id, without params and payload: the dispatch
  // mark and the events that follow an accept find their operation here
  // instead of by a SELECT. Only this writer changes operations, so the
  // copies stay exact while the transaction commits; rollback() clears them
  // all. Bounded: past k_live_max entries, new operations are looked up in
  // the table instead.
  static constexpr size_t k_live_max = 32768;
  std::unordered_map<std::string, OperationRecord> live;
  // The last attempt whose dispatch mark went into history, per unfinished
  // operation. The mark reaches the writer after the command was sent, so a
  // worker's `processing` for that attempt can overtake it; the late mark is
  // still recorded (apply_dispatched). Unknown (evicted, rolled back,
  // restarted): the mark counts as recorded.
  std::unordered_map<std::string, int> marked;
  bool mark_missing(const std::string& id, int attempt) const {
    auto it = marked.find(id);
    return it != marked.end() && it->second < attempt;
  }
  // An operation the service refused, or that never ran, made no resource:
  // the resource it claimed must not stay owned. A failed one keeps its
  // claim: its effect may have happened (a worker that gave no answer in
  // time). A saga's operation follows the same rule.
  void free_unmade_claim(const OperationRecord& op) {
    if ((op.state != OpState::rejected && op.state != OpState::canceled) || op.resource.empty()) return;
    free_claim.reset();
    free_claim.bindNoCopy(1, op.resource);
    free_claim.bind(2, static_cast<int64_t>(op.seq));
    free_claim.exec();
  }
  // Stores op's attempt and updated_at (a send), and remembers op.
  void store_attempt(const OperationRecord& op) {
    defer_row(op, false);
    remember(op);
  }

  // Operation rows changed in this transaction and not yet written. An
  // operation's dispatch mark, its `processing` and its outcome often meet
  // in one batch under load, and each was an UPDATE of its row (and, for a
  // new state, of the state index). The newest record is kept here and its
  // row written once: at commit(), or before anything else reads or writes
  // the operations table on this connection (flush_rows()). find() reads
  // it first. The history rows and the changes are written as before, one
  // per event: only the row's intermediate values are never stored.
  struct Unwritten {
    OperationRecord op;
    bool state_changed = false;  // state, code, message or worker: else only attempt and updated_at
  };
  std::unordered_map<std::string, Unwritten> unwritten;
  void defer_row(const OperationRecord& op, bool state_changed) {
    Unwritten& u = unwritten[op.id];
    u.op = without_trees(op);
    u.state_changed = u.state_changed || state_changed;
  }
  void flush_rows() {
    for (auto& [id, u] : unwritten) {
      const OperationRecord& op = u.op;
      if (u.state_changed) {
        auto& up = update_state;
        up.reset();
        up.bindNoCopy(1, to_string(op.state));
        bind_text_or_null(up, 2, op.code);
        bind_text_or_null(up, 3, op.message);
        up.bind(4, op.attempt);
        up.bind(5, static_cast<int64_t>(op.updated_at));
        bind_text_or_null(up, 6, op.worker);
        up.bind(7, static_cast<int64_t>(op.seq));
        up.exec();
      } else {
        mark_dispatched.reset();
        mark_dispatched.bind(1, op.attempt);
        mark_dispatched.bind(2, static_cast<int64_t>(op.updated_at));
        mark_dispatched.bind(3, static_cast<int64_t>(op.seq));
        mark_dispatched.exec();
      }
    }
    unwritten.clear();
  }
  void remember(const OperationRecord& op) {
    if (is_terminal(op.state)) {
      live.erase(op.id);
      marked.erase(op.id);
      return;
    }
    if (auto it = live.find(op.id); it != live.end()) it->second = without_trees(op);
    else if (live.size() < k_live_max) live.emplace(op.id, without_trees(op));
  }
  // remember() for an operation just inserted: it cannot be known yet, and
  // past k_live_max (a backlog) it is not looked up at all.
  void remember_new(const OperationRecord& op) {
    if (live.size() < k_live_max && !is_terminal(op.state)) live.emplace(op.id, without_trees(op));
  }

  SQLite::Database db;
  sqlite_saga::Rows saga_rows{db};  // after db: it prepares on it
  // The saga's statements on the operations table, compiled on first use.
  std::unique_ptr<SQLite::Statement> saga_update_op, saga_mark_steps;
  SQLite::Statement& kept(std::unique_ptr<SQLite::Statement>& slot, const char* sql) {
    if (!slot) slot = std::make_unique<SQLite::Statement>(db, sql);
    slot->reset();
    return *slot;
  }
  SQLite::Statement insert_op, insert_history, select_op, select_op_full, update_state, upsert_resource,
      delete_resource, select_owner, insert_owner, free_owner, free_claim, insert_key, select_key, set_cancel, mark_dispatched, select_unfinished;
  // Compiled once: exec("BEGIN IMMEDIATE") and exec("COMMIT") would parse
  // their text again for every batch.
  SQLite::Statement begin_tx{db, "BEGIN IMMEDIATE"}, commit_tx{db, "COMMIT"};
  // tryReset: a reset returns the last run's error again, and exec() has
  // already thrown it.
  void run(SQLite::Statement& st) {
    st.tryReset();
    st.exec();
    st.tryReset();
  }
};

SqliteStoreWriter::SqliteStoreWriter() = default;
SqliteStoreWriter::~SqliteStoreWriter() = default;

Result<std::unique_ptr<SqliteStoreWriter>> SqliteStoreWriter::open(const std::string& path, SyncMode sync) {
  auto init = init_store(path, sync);
  if (!init) return Error{init.error()};
  try {
    std::unique_ptr<SqliteStoreWriter> w(new SqliteStoreWriter());
    w->m = std::make_unique<Impl>(path);
    configure(w->m->db, sync);
    w->set_wal_limit_pages(k_wal_limit_pages);
    return w;
  } catch (const std::exception& e) {
    return Error{"cannot open store " + path + ": " + e.what()};
  }
}

void SqliteStoreWriter::set_wal_limit_pages(int pages) {
  // The Checkpointer's thread copies the WAL back every second (PASSIVE),
  // so that checkpoints and their fsyncs stay off the commit thread. But a
  // WAL only starts again from its beginning when a write transaction
  // begins right after a checkpoint that copied every frame, and under a
  // steady stream of commits the background checkpoint never quite catches
  // up: the file grew by gigabytes a minute. So when the Checkpointer sees
  // more than `pages` frames left, it asks the writer (want_wal_restart) to
  // copy the few frames since, between two transactions. Letting the
  // writer's automatic checkpoint do it at `pages` instead cost the commit
  // thread tens of ms each time (accept p99 at 4,000/s went from ~3 ms to
  // ~42 ms): that is only a safety net now, at four times the limit. The
  // file is not truncated after a restart (journal_size_limit): freeing
  // 64 MiB of blocks stalled the commit thread for ~25 ms; the WAL is
  // simply written again from its beginning and stays about that size.
  m->db.exec("PRAGMA wal_autocheckpoint=" + std::to_string(static_cast<int64_t>(pages) * 4));
}

void SqliteStoreWriter::write_probe(int64_t now) {
  SQLite::Statement st(m->db, "INSERT OR REPLACE INTO meta(key, value) VALUES ('probed_at', ?)");
  st.bind(1, std::to_string(now));
  st.exec();
}

void SqliteStoreWriter::set_max_page_count(int64_t pages) {
  m->db.exec("PRAGMA max_page_count=" + std::to_string(pages));
}

void SqliteStoreWriter::begin() { m->run(m->begin_tx); }
void SqliteStoreWriter::commit() {
  m->flush_rows();
  m->run(m->commit_tx);
  if (m_wal_restart.load(std::memory_order_relaxed) && m_wal_restart.exchange(false)) {
    if (checkpoint_between_transactions(m->db.getHandle())) m_wal_restarts++;
  }
}
void SqliteStoreWriter::rollback() {
  m->live.clear();  // it may hold changes that are being undone
  m->marked.clear();
  m->unwritten.clear();
  try {
    m->db.exec("ROLLBACK");
  } catch (const std::exception&) {
    // No transaction was open: nothing to undo.
  }
}

Change SqliteStoreWriter::insert_operation(OperationRecord* op) {
  // Without a key it always inserts. This form leaves op whole.
  OperationRecord moved = *op;
  Change c = std::get<Change>(insert_operation(&moved, nullptr));
  op->seq = c.op.seq;
  return c;
}

std::variant<Change, IdempotentReplay> SqliteStoreWriter::insert_operation(OperationRecord* op,
                                                                           const IdempotencyKey* key,
                                                                           StoredTexts* texts) {
  if (key) {
    // The key is claimed first; if it is already taken, nothing is written
    // and the caller answers from the first request's operation.
    auto& sk = m->select_key;
    sk.reset();
    sk.bind(1, key->owner);
    sk.bind(2, key->key);
    if (sk.executeStep()) {
      IdempotentReplay first{column_text(sk, 1), column_text(sk, 0)};
      sk.reset();
      return first;
    }
    sk.reset();
  }
  auto& st = m->insert_op;
  st.reset();
  st.bindNoCopy(1, op->id);
  st.bindNoCopy(2, op->name);
  st.bindNoCopy(3, op->service);
  st.bindNoCopy(4, to_string(op->state));
  bind_text_or_null(st, 5, op->code);
  bind_text_or_null(st, 6, op->message);
  st.bindNoCopy(7, op->resource);
  st.bindNoCopy(8, op->origin);
  st.bindNoCopy(9, op->owner);
  StoredTexts made;
  if (!texts) texts = &made;
  texts->params = json_text(op->params, nlohmann::json::error_handler_t::strict);
  texts->payload = json_text(op->payload, nlohmann::json::error_handler_t::strict);
  st.bindNoCopy(10, texts->params);
  st.bindNoCopy(11, texts->payload);
  st.bind(12, op->attempt);
  st.bind(13, static_cast<int64_t>(op->created_at));
  st.bind(14, static_cast<int64_t>(op->updated_at));
  bind_text_or_null(st, 15, op->retry_of);
  st.exec();
  op->seq = m->db.getLastInsertRowid();
  if (key) {
    auto& ik = m->insert_key;
    ik.reset();
    ik.bind(1, key->owner);
    ik.bind(2, key->key);
    ik.bind(3, key->request_hash);
    ik.bind(4, static_cast<int64_t>(op->seq));
    ik.bind(5, static_cast<int64_t>(op->created_at));
    ik.exec();
  }
  Change out;
  out.seq = m->append_history(op->seq, HistoryKind::accepted, op->state, op->code, op->message, op->created_at);
  out.kind = HistoryKind::accepted;
  m->remember_new(*op);
  out.op = std::move(*op);
  return out;
}

bool SqliteStoreWriter::owners_allow(const std::string& owner, const OwnershipCheck& check) {
  auto& st = m->select_owner;
  for (const OwnershipCheck::Path& p : check.paths) {
    st.reset();
    st.bind(1, p.path);
    bool allowed = st.executeStep() ? column_text(st, 0) == owner : !p.unowned_is_unknown;
    st.reset();
    if (!allowed) return false;
  }
  return true;
}

void SqliteStoreWriter::claim_resource(const std::string& path, const std::string& owner, int64_t op_seq) {
  auto& st = m->insert_owner;
  st.reset();
  st.bindNoCopy(1, path);
  st.bindNoCopy(2, owner);
  st.bind(3, static_cast<int64_t>(op_seq));
  st.exec();
}

SqliteStoreWriter::Applied SqliteStoreWriter::request_cancel(const std::string& op_id, int64_t now, Change* change) {
  m->flush_rows();  // it writes updated_at itself
  auto found = m->find(op_id);
  if (!found) return Applied::unknown_operation;
  OperationRecord op = std::move(*found);
  // A saga's cancel is request_saga_cancel: it also decides about its steps.
  if (is_terminal(op.state) || op.cancel_requested || op.step_count > 0) return Applied::ignored;
  op.cancel_requested = true;
  op.updated_at = now;
  auto& up = m->set_cancel;
  up.reset();
  up.bind(1, static_cast<int64_t>(now));
  up.bind(2, static_cast<int64_t>(op.seq));
  up.exec();
  m->remember(op);
  change->seq = m->append_history(op.seq, HistoryKind::cancel_requested, op.state, "", "", now);
  change->kind = HistoryKind::cancel_requested;
  change->op = std::move(op);
  return Applied::changed;
}

int SqliteStoreWriter::prune(int64_t before_ms, int limit) {
  m->flush_rows();
  // One small batch: the oldest terminal operations last changed before
  // before_ms, with their history and idempotency keys.
  SQLite::Statement pick(m->db,
                         "SELECT seq FROM operations WHERE state NOT IN ('pending','processing') "
                         "AND updated_at < ? ORDER BY updated_at LIMIT ?");
  pick.bind(1, static_cast<int64_t>(before_ms));
  pick.bind(2, limit);
  std::vector<int64_t> seqs;
  while (pick.executeStep()) seqs.push_back(pick.getColumn(0).getInt64());
  for (int64_t seq : seqs) forget_seq(seq);
  return static_cast<int>(seqs.size());
}

void SqliteStoreWriter::forget_seq(int64_t seq) {
  // The newest history row stays, even when its operation goes: it holds
  // max(seq), from which the next seq is made (see the schema). The
  // readers join history to operations, so the orphan is never shown.
  for (const char* sql : {"DELETE FROM history WHERE op_seq = ? AND seq < (SELECT max(seq) FROM history)",
                          "DELETE FROM idempotency WHERE op_seq = ?",
                          "DELETE FROM saga_steps WHERE op_seq = ?",
                          "DELETE FROM operations WHERE seq = ?"}) {
    SQLite::Statement st(m->db, sql);
    st.bind(1, static_cast<int64_t>(seq));
    st.exec();
  }
}

SqliteStoreWriter::Applied SqliteStoreWriter::forget(const std::string& op_id) {
  m->flush_rows();
  auto found = m->find(op_id);
  if (!found) return Applied::unknown_operation;
  OperationRecord op = std::move(*found);
  if (!is_terminal(op.state)) return Applied::ignored;
  forget_seq(op.seq);
  return Applied::changed;
}

int64_t SqliteStoreWriter::count_unfinished() {
  m->flush_rows();
  SQLite::Statement st(m->db, "SELECT count(*) FROM operations WHERE state IN ('pending','processing')");
  return st.executeStep() ? st.getColumn(0).getInt64() : 0;
}

SqliteStoreWriter::Applied SqliteStoreWriter::apply_event(const Event& e, int64_t now, Change* change,
                                                          const EventSender& sender) {
  auto found = m->find(e.request_id);
  if (!found) return Applied::unknown_operation;
  OperationRecord op = std::move(*found);
  // A saga's id is never sent on its own: only its steps' ids are
  // (apply_step_event). An event naming it moves nothing.
  if (op.step_count > 0) return Applied::rejected;

  // A terminal state never moves, with one exception: a worker's real
  // outcome replaces the daemon's give-up (failed/worker_timeout), because
  // the service did the work after all (docs/protocol.md §9).
  bool superseding = false;
  if (is_terminal(op.state)) {
    if (!may_supersede(op, e)) {
      // An outcome from an attempt that had lost its lease, after another
      // attempt ended the operation: the work may have been done twice, on
      // two hosts. It changes nothing, but it is not silent (issue 18): it
      // goes into the operation's history, and the caller counts and logs it.
      if (!is_terminal(e.state) || e.attempt >= op.attempt) return Applied::ignored;
      if (!sender.may_serve(op.service)) return Applied::rejected;
      std::string message = "a late outcome " + std::string(to_string(e.state)) + "/" +
                            (e.code.empty() ? std::string("-") : e.code.substr(0, 128)) + " from attempt " +
                            std::to_string(e.attempt) + " (worker " + e.worker.substr(0, 128) +
                            "), after attempt " + std::to_string(op.attempt) + " had the lease; the operation stays " +
                            to_string(op.state);
      change->seq = m->append_history(op.seq, HistoryKind::late_outcome, op.state, e.code, message, now);
      change->kind = HistoryKind::late_outcome;
      change->op = std::move(op);
      return Applied::late;
    }
    superseding = true;
  }
  // A worker authenticated by CURVE may only report on its own services.
  if (!sender.may_serve(op.service)) return Applied::rejected;
  // An event may only touch its own operation's resource: the resource the
  // route named, or for a command without one (a DELETE) the path it was
  // sent to. A worker cannot use one operation to write another resource.
  if (!e.resource.empty()) {
    std::string allowed = op.resource;
    if (allowed.empty()) {
      auto sp = op.origin.find(' ');
      allowed = sp == std::string::npos ? "" : op.origin.substr(sp + 1);
    }
    if (e.resource != allowed) return Applied::rejected;
  }
  if (e.state == op.state && e.state == OpState::processing) {  // duplicate processing
    return Applied::ignored;
  }
  std::string superseded = superseding ? std::string(to_string(op.state)) + "/" + op.code : "";
  op.state = e.state;
  if (is_terminal(e.state)) {
    op.code = !e.code.empty() ? e.code : (e.state == OpState::completed ? "success" : "error");
    op.message = e.message;
  }
  op.attempt = std::max(op.attempt, e.attempt);
  op.updated_at = now;
  if (!e.worker.empty()) op.worker = e.worker;

  m->defer_row(op, true);

  // The read model changes in the same transaction as the state, so a
  // completed operation's resource is readable as soon as it shows completed.
  if (op.state == OpState::completed) write_read_model(op, e, now);
  m->free_unmade_claim(op);
  m->remember(op);
  HistoryKind kind = superseding ? HistoryKind::superseded : history_kind_of(op.state);
  std::string history_message =
      superseding ? "the worker's outcome " + std::string(to_string(op.state)) + "/" + op.code + " supersedes " +
                        superseded + (op.message.empty() ? "" : ": " + op.message)
                  : op.message;
  change->seq = m->append_history(op.seq, kind, op.state, op.code, history_message, now);
  change->kind = kind;
  change->op = std::move(op);
  return Applied::changed;
}

void SqliteStoreWriter::write_read_model(const OperationRecord& op, const Event& e, int64_t now) {
  {
    const std::string& path = !e.resource.empty() ? e.resource : op.resource;
    if (!path.empty() && path[0] == '/' && (e.deleted || !e.data.is_null())) {
      auto& ur = m->upsert_resource;
      ur.reset();
      const std::string collection = collection_of(path);
      const std::string body = e.deleted ? std::string() : json_text(e.data);
      ur.bindNoCopy(1, path);
      ur.bindNoCopy(2, collection);
      if (e.deleted) ur.bind(3);  // tombstone
      else ur.bindNoCopy(3, body);
      ur.bindNoCopy(4, op.id);
      ur.bind(5, static_cast<int64_t>(op.seq));
      ur.bind(6, static_cast<int64_t>(now));
      if (e.version > 0) ur.bind(7, static_cast<int64_t>(e.version));
      else ur.bind(7);
      // A tombstone the version rule skipped (the service wrote the
      // resource after this delete) frees nothing.
      if (ur.exec() > 0 && e.deleted) {
        // The resource is gone, and so is its owner: an id the gateway
        // generated is then unknown to everyone but an admin.
        auto& fo = m->free_owner;
        fo.reset();
        fo.bind(1, path);
        fo.exec();
      }
    }
  }
}

SqliteStoreWriter::Applied SqliteStoreWriter::apply_dispatched(const std::string& op_id, int attempt, int64_t now,
                                                   Change* change) {
  if (auto ref = saga::parse_step_request_id(op_id)) return apply_step_dispatched(*ref, attempt, now, change);
  auto found = m->find(op_id);
  if (!found) return Applied::unknown_operation;
  OperationRecord op = std::move(*found);
  if (attempt <= 0 || op.step_count > 0) return Applied::ignored;  // a saga sends only its steps' ids
  // Recorded while pending; or late, after the worker's `processing` for
  // this very attempt overtook it. A mark for another attempt of a running
  // operation is not history.
  bool late = op.state == OpState::processing && attempt > 1 && attempt == op.attempt &&
              m->mark_missing(op.id, attempt);
  if (op.state != OpState::pending && !late) {
    // Not history, but the stored attempt follows every send, so that an
    // outcome from an older attempt can be told apart (late outcomes).
    if (op.state == OpState::processing && attempt > op.attempt) {
      op.attempt = attempt;
      m->store_attempt(op);
    }
    return Applied::ignored;
  }
  op.attempt = std::max(op.attempt, attempt);
  op.updated_at = now;
  m->store_attempt(op);
  if (m->marked.size() < Impl::k_live_max || m->marked.count(op.id)) m->marked[op.id] = attempt;
  HistoryKind kind = attempt > 1 ? HistoryKind::redelivered : HistoryKind::dispatched;
  change->seq = m->append_history(op.seq, kind, op.state, "", "", now);
  change->kind = kind;
  change->op = std::move(op);
  return Applied::changed;
}

// ---------------------------------------------------------------- sagas

namespace {

// The operation state a note of the operation's own kind moves a saga to;
// step kinds leave it.
OpState state_after_note(OpState state, HistoryKind kind) {
  switch (kind) {
    case HistoryKind::processing: return OpState::processing;
    case HistoryKind::completed: return OpState::completed;
    case HistoryKind::rejected: return OpState::rejected;
    case HistoryKind::failed: return OpState::failed;
    case HistoryKind::canceled: return OpState::canceled;
    default: return state;
  }
}

std::optional<size_t> step_index(const saga::SagaState& s, const std::string& name) {
  for (size_t i = 0; i < s.plan.size(); ++i) {
    if (s.plan[i].name == name) return i;
  }
  return std::nullopt;
}

std::vector<StepView> views_of(const saga::SagaState& s) {
  std::vector<StepView> out;
  out.reserve(s.plan.size());
  for (size_t i = 0; i < s.plan.size() && i < s.steps.size(); ++i) {
    StepView v{s.plan[i], s.steps[i]};
    v.status.data = nullptr;
    out.push_back(std::move(v));
  }
  return out;
}

// The command of one dispatch of a saga (docs/design/sagas.md §6).
Command saga_command(const OperationRecord& full, const saga::SagaState& s, const saga::Dispatch& d) {
  const saga::StepPlan& p = s.plan[d.step];
  bool compensation = d.what == saga::Dispatch::What::compensation;
  Command c = command_for(full);
  c.id = d.request_id;
  c.name = compensation ? p.compensate : p.command;
  c.service = p.service;
  c.attempt = d.attempt;
  // A settle asks with cancel; a forward step of a saga whose cancel was
  // asked for carries it too; a compensation never does.
  c.cancel = d.what == saga::Dispatch::What::settle || (!compensation && s.cancel_requested);
  c.saga = SagaRef{s.op_id, p.name, compensation};
  c.steps = saga::command_steps_data(s, d);
  c.lease = std::chrono::milliseconds(p.timeout_ms);
  c.max_attempts = d.what == saga::Dispatch::What::settle ? k_unlimited_attempts : p.max_attempts;
  return c;
}

}  // namespace

SqliteStoreWriter::SagaApplied SqliteStoreWriter::write_saga_decision(OperationRecord op,
                                                                      const saga::SagaState& before,
                                                                      const saga::SagaDecision& d, int64_t now,
                                                                      const std::string& worker,
                                                                      const OperationRecord* full) {
  SagaApplied out;
  out.applied = d.changed ? Applied::changed : Applied::ignored;
  if (d.changed) {
    m->saga_rows.write_changed_steps(op.seq, before, d.state);
    OpState was = op.state;
    op.state = d.state.op_state;
    op.code = d.state.code;
    op.message = d.state.message;
    op.cancel_requested = d.state.cancel_requested;
    op.attempt = std::max(op.attempt, sqlite_saga::highest_attempt(d.state));
    op.updated_at = now;
    if (!worker.empty()) op.worker = worker;
    SQLite::Statement& up = m->kept(m->saga_update_op,
                                    "UPDATE operations SET state = ?, code = ?, message = ?, attempt = max(attempt, ?), "
                                    "updated_at = ?, worker = COALESCE(?, worker), cancel_requested = ? WHERE seq = ?");
    up.bind(1, to_string(op.state));
    bind_text_or_null(up, 2, op.code);
    bind_text_or_null(up, 3, op.message);
    up.bind(4, op.attempt);
    up.bind(5, static_cast<int64_t>(now));
    bind_text_or_null(up, 6, worker);
    up.bind(7, op.cancel_requested ? 1 : 0);
    up.bind(8, static_cast<int64_t>(op.seq));
    up.exec();
    m->free_unmade_claim(op);
    m->remember(op);
    // Each note is one history entry with the operation's state as of it,
    // so a client sees the step changes before the end, in order.
    std::vector<StepView> steps = views_of(d.state);
    OpState running = was;
    for (const saga::HistoryNote& note : d.history) {
      HistoryKind kind = parse_history_kind(note.kind).value_or(HistoryKind::failed);
      if (note.step.empty()) running = state_after_note(running, kind);
      Change c;
      c.seq = m->append_history(op.seq, kind, running, note.code, note.message, now, note.step);
      c.kind = kind;
      c.op = without_trees(op);
      c.op.state = running;
      if (!is_terminal(running)) {
        c.op.code.clear();
        c.op.message.clear();
      }
      c.op.steps = steps;
      c.step = note.step;
      if (!note.step.empty()) {
        c.request_id = is_compensation_kind(kind) ? saga::compensation_request_id(op.id, note.step)
                                                  : saga::step_request_id(op.id, note.step);
      }
      out.changes.push_back(std::move(c));
    }
  }
  if (!d.dispatch.empty()) {
    std::optional<OperationRecord> loaded;
    if (!full) {
      loaded = read_operation_by_id(m->select_op_full, op.id);
      full = loaded ? &*loaded : &op;
    }
    for (const saga::Dispatch& one : d.dispatch) out.commands.push_back(saga_command(*full, d.state, one));
  }
  out.cancel = d.cancel;
  return out;
}

SqliteStoreWriter::SagaApplied SqliteStoreWriter::start_saga(const OperationRecord& op,
                                                             const std::vector<saga::StepPlan>& plan, int64_t now) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  SagaApplied out;
  if (plan.empty() || op.seq <= 0) return out;
  SQLite::Statement& mark = m->kept(m->saga_mark_steps, "UPDATE operations SET steps = ? WHERE seq = ?");
  mark.bind(1, static_cast<int64_t>(plan.size()));
  mark.bind(2, static_cast<int64_t>(op.seq));
  mark.exec();
  m->saga_rows.insert_steps(op.seq, plan);
  OperationRecord rec = without_trees(op);
  rec.step_count = static_cast<int>(plan.size());
  m->remember(rec);
  saga::SagaState before = saga::new_saga(op.id, plan);
  before.op_state = op.state;
  saga::SagaInput in;
  in.kind = saga::SagaInput::Kind::start;
  in.now = now;
  return write_saga_decision(std::move(rec), before, saga::next(before, in), now, "", &op);
}

SqliteStoreWriter::SagaApplied SqliteStoreWriter::apply_step_event(const Event& e, int64_t now,
                                                                   const EventSender& sender) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  SagaApplied out;
  out.applied = Applied::unknown_operation;
  auto ref = saga::parse_step_request_id(e.request_id);
  if (!ref) return out;
  auto found = m->find(ref->op_id);
  if (!found || found->step_count <= 0) return out;
  OperationRecord op = std::move(*found);
  saga::SagaState before = m->saga_rows.load(op);
  auto i = step_index(before, ref->step);
  if (!i) {
    out.applied = Applied::ignored;  // a step this saga does not have
    return out;
  }
  // A worker authenticated by CURVE may only report on its own services.
  if (!sender.may_serve(before.plan[*i].service)) {
    out.applied = Applied::rejected;
    return out;
  }
  saga::SagaInput in;
  in.kind = saga::SagaInput::Kind::step_event;
  in.request_id = e.request_id;
  in.state = e.state;
  in.code = e.code;
  in.message = e.message;
  in.data = e.data;
  in.attempt = e.attempt;
  in.now = now;
  saga::SagaDecision d = saga::next(before, in);
  bool last_completed = !ref->compensation && *i + 1 == before.plan.size() && d.changed &&
                        before.steps[*i].state != saga::StepState::completed &&
                        d.state.steps[*i].state == saga::StepState::completed;
  bool refused = false;
  if (last_completed) {
    // The last step's data is the resource: written as a plain command's
    // event is, for the operation's own resource only (design §1).
    std::string allowed = op.resource;
    if (allowed.empty()) {
      auto sp = op.origin.find(' ');
      allowed = sp == std::string::npos ? "" : op.origin.substr(sp + 1);
    }
    if (!e.resource.empty() && e.resource != allowed) refused = true;
    else write_read_model(op, e, now);
  }
  out = write_saga_decision(std::move(op), before, d, now, d.changed ? e.worker : "", nullptr);
  out.resource_refused = refused;
  return out;
}

SqliteStoreWriter::SagaApplied SqliteStoreWriter::apply_step_gave_up(const std::string& request_id, int attempts,
                                                                     int64_t now) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  SagaApplied out;
  out.applied = Applied::unknown_operation;
  auto ref = saga::parse_step_request_id(request_id);
  if (!ref) return out;
  auto found = m->find(ref->op_id);
  if (!found || found->step_count <= 0) return out;
  OperationRecord op = std::move(*found);
  saga::SagaState before = m->saga_rows.load(op);
  saga::SagaInput in;
  in.kind = saga::SagaInput::Kind::gave_up;
  in.request_id = request_id;
  in.attempt = attempts;
  in.now = now;
  return write_saga_decision(std::move(op), before, saga::next(before, in), now, "", nullptr);
}

SqliteStoreWriter::SagaApplied SqliteStoreWriter::request_saga_cancel(const std::string& op_id, int64_t now) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  SagaApplied out;
  out.applied = Applied::unknown_operation;
  auto found = m->find(op_id);
  if (!found) return out;
  if (found->step_count <= 0) {
    out.applied = Applied::ignored;  // a plain operation: request_cancel
    return out;
  }
  OperationRecord op = std::move(*found);
  saga::SagaState before = m->saga_rows.load(op);
  saga::SagaInput in;
  in.kind = saga::SagaInput::Kind::cancel;
  in.now = now;
  return write_saga_decision(std::move(op), before, saga::next(before, in), now, "", nullptr);
}

SqliteStoreWriter::SagaApplied SqliteStoreWriter::resume_saga(const std::string& op_id, int default_max_attempts,
                                                              int64_t now) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  SagaApplied out;
  out.applied = Applied::unknown_operation;
  auto found = m->find(op_id);
  if (!found) return out;
  if (found->step_count <= 0) {
    out.applied = Applied::ignored;
    return out;
  }
  OperationRecord op = std::move(*found);
  saga::SagaState before = m->saga_rows.load(op);
  return write_saga_decision(std::move(op), before, saga::resume(before, default_max_attempts, now), now, "",
                             nullptr);
}

SqliteStoreWriter::Applied SqliteStoreWriter::apply_step_dispatched(const saga::StepRef& ref, int attempt,
                                                                    int64_t now, Change* change) {
  m->flush_rows();  // a saga's statements write operations rows themselves
  auto found = m->find(ref.op_id);
  if (!found || found->step_count <= 0) return Applied::unknown_operation;
  OperationRecord op = std::move(*found);
  if (attempt <= 0 || is_terminal(op.state)) return Applied::ignored;
  saga::SagaState before = m->saga_rows.load(op);
  auto i = step_index(before, ref.step);
  if (!i) return Applied::ignored;
  saga::SagaState after = before;
  saga::StepStatus& st = after.steps[*i];
  int* stored = nullptr;
  if (ref.compensation) {
    bool in_flight = st.compensation.state == saga::CompState::pending ||
                     st.compensation.state == saga::CompState::processing;
    if (in_flight) stored = &st.compensation.attempt;
  } else {
    bool in_flight = st.state == saga::StepState::pending || st.state == saga::StepState::processing ||
                     st.state == saga::StepState::settling;
    if (in_flight) stored = &st.attempt;
  }
  // Only a send that raises the attempt is news: a record can arrive after
  // the step's outcome, or twice.
  if (!stored || attempt <= *stored) return Applied::ignored;
  *stored = attempt;
  m->saga_rows.write_changed_steps(op.seq, before, after);
  op.attempt = std::max(op.attempt, attempt);
  m->store_attempt(op);
  // The first send's entry is the decision's step_dispatched.
  if (attempt == 1) return Applied::ignored;
  HistoryKind kind = ref.compensation ? HistoryKind::compensation_redelivered : HistoryKind::step_redelivered;
  change->seq = m->append_history(op.seq, kind, op.state, "", "", now, ref.step);
  change->kind = kind;
  change->op = std::move(op);
  change->op.steps = views_of(after);
  change->step = ref.step;
  change->request_id = ref.compensation ? saga::compensation_request_id(ref.op_id, ref.step)
                                        : saga::step_request_id(ref.op_id, ref.step);
  return Applied::changed;
}

int64_t SqliteStoreWriter::latest_history_seq() {
  SQLite::Statement st(m->db, "SELECT coalesce(max(seq), 0) FROM history");
  int64_t seq = st.executeStep() ? st.getColumn(0).getInt64() : 0;
  // A store made with AUTOINCREMENT also keeps its high-water mark in
  // sqlite_sequence (it may be above max(seq) after an older prune).
  SQLite::Statement has(m->db, "SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'");
  if (has.executeStep()) {
    SQLite::Statement old(m->db, "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'history'");
    if (old.executeStep()) seq = std::max(seq, old.getColumn(0).getInt64());
  }
  return seq;
}

std::vector<OperationRecord> SqliteStoreWriter::unfinished(int limit, int64_t after_seq) {
  m->flush_rows();
  std::vector<OperationRecord> out;
  auto& st = m->select_unfinished;
  st.reset();
  st.bind(1, static_cast<int64_t>(after_seq));
  st.bind(2, limit);
  while (st.executeStep()) out.push_back(read_operation(st));
  st.reset();
  return out;
}

// ---------------------------------------------------------------- reader

struct SqliteStoreReader::Impl {
  explicit Impl(const std::string& path)
      : db(path, SQLite::OPEN_READONLY | SQLite::OPEN_NOMUTEX),  // one thread at a time, as the writer
        get_op(db, std::string("SELECT ") + k_op_columns + " FROM operations WHERE id = ?"),
        history(db,
                "SELECT h.seq, h.kind, h.state, h.code, h.message, h.at, h.step FROM history h "
                "JOIN operations o ON o.seq = h.op_seq WHERE o.id = ? ORDER BY h.seq"),
        changes_after(db, std::string("SELECT h.seq, h.kind, h.state, h.code, h.message, h.at, ") +
                              "o.seq, o.id, o.name, o.service, o.resource, o.origin, o.owner, "
                              "o.attempt, o.created_at, o.cancel_requested, o.retry_of, o.worker, "
                              "o.steps, h.step FROM history h "
                              "JOIN operations o ON o.seq = h.op_seq WHERE h.seq > ? ORDER BY h.seq LIMIT ?"),
        changes_after_op(db, std::string("SELECT h.seq, h.kind, h.state, h.code, h.message, h.at, ") +
                                 "o.seq, o.id, o.name, o.service, o.resource, o.origin, o.owner, "
                                 "o.attempt, o.created_at, o.cancel_requested, o.retry_of, o.worker, "
                                 "o.steps, h.step FROM operations o "
                                 "JOIN history h ON h.op_seq = o.seq WHERE o.id = ? AND h.seq > ? ORDER BY h.seq LIMIT ?"),
        // The owner is the resource's own (resource_owners), never that of
        // the operation that last wrote it.
        get_resource(db,
                     "SELECT r.path, r.body, r.updated_at, COALESCE(w.owner, '') FROM resources r "
                     "LEFT JOIN resource_owners w ON w.path = r.path WHERE r.path = ? AND r.body IS NOT NULL"),
        list_resources(db,
                       "SELECT r.path, r.body, r.updated_at, COALESCE(w.owner, '') FROM resources r "
                       "LEFT JOIN resource_owners w ON w.path = r.path WHERE r.path > ? AND r.path < ? "
                       "AND r.collection = ? AND r.body IS NOT NULL ORDER BY r.path LIMIT ?"),
        list_resources_owned(db,
                             "SELECT r.path, r.body, r.updated_at, w.owner FROM resources r "
                             "JOIN resource_owners w ON w.path = r.path WHERE r.path > ? AND r.path < ? "
                             "AND r.collection = ? AND r.body IS NOT NULL AND w.owner = ? ORDER BY r.path LIMIT ?"),
        get_key(db,
                "SELECT i.request_hash, o.id FROM idempotency i JOIN operations o ON o.seq = i.op_seq "
                "WHERE i.owner = ? AND i.key = ?"),
        retries_of(db, "SELECT id FROM operations WHERE retry_of = ? ORDER BY seq") {
    db.setBusyTimeout(5000);
  }
  SQLite::Database db;
  sqlite_saga::Rows saga_rows{db};  // after db: it prepares on it
  SQLite::Statement get_op, history, changes_after, changes_after_op, get_resource, list_resources,
      list_resources_owned, get_key, retries_of;
};

SqliteStoreReader::SqliteStoreReader() = default;
SqliteStoreReader::~SqliteStoreReader() = default;

Result<std::unique_ptr<SqliteStoreReader>> SqliteStoreReader::open(const std::string& path) {
  try {
    std::unique_ptr<SqliteStoreReader> r(new SqliteStoreReader());
    r->m = std::make_unique<Impl>(path);
    return r;
  } catch (const std::exception& e) {
    return Error{"cannot open store " + path + " for reading: " + e.what()};
  }
}

std::optional<OperationRecord> SqliteStoreReader::get_operation(const std::string& id) {
  auto op = read_operation_by_id(m->get_op, id);
  if (op && op->step_count > 0) op->steps = m->saga_rows.read_views(op->seq);
  return op;
}

std::vector<OperationRecord> SqliteStoreReader::list_operations(const OperationFilter& f) {
  // Every value is bound; only the fixed clause texts are concatenated.
  std::string sql = std::string("SELECT ") + k_op_columns + " FROM operations WHERE 1=1";
  if (f.state) sql += " AND state = ?";
  if (!f.name.empty()) sql += " AND name = ?";
  if (f.since_ms > 0) sql += " AND created_at >= ?";
  if (f.until_ms > 0) sql += " AND created_at <= ?";
  if (!f.code.empty()) sql += " AND code = ?";
  bool under = !f.resource.empty() && f.resource.back() == '/';
  if (!f.resource.empty() && under) sql += " AND substr(resource, 1, ?) = ?";
  if (!f.resource.empty() && !under) sql += " AND resource = ?";
  if (f.before_seq > 0) sql += " AND seq < ?";
  if (f.owner) sql += " AND owner = ?";
  // SQLite uses the partial operations_by_owner_set only for a query that
  // repeats its WHERE term; a filter by '' reads the table.
  if (f.owner && !f.owner->empty()) sql += " AND owner <> ''";
  sql += " ORDER BY seq DESC LIMIT ?";
  SQLite::Statement st(m->db, sql);
  int i = 1;
  if (f.state) st.bind(i++, to_string(*f.state));
  if (!f.name.empty()) st.bind(i++, f.name);
  if (f.since_ms > 0) st.bind(i++, static_cast<int64_t>(f.since_ms));
  if (f.until_ms > 0) st.bind(i++, static_cast<int64_t>(f.until_ms));
  if (!f.code.empty()) st.bind(i++, f.code);
  if (under) st.bind(i++, static_cast<int64_t>(f.resource.size()));
  if (!f.resource.empty()) st.bind(i++, f.resource);
  if (f.before_seq > 0) st.bind(i++, static_cast<int64_t>(f.before_seq));
  if (f.owner) st.bind(i++, *f.owner);
  st.bind(i++, f.limit);
  std::vector<OperationRecord> out;
  while (st.executeStep()) out.push_back(read_operation(st));
  return out;
}

std::vector<std::string> SqliteStoreReader::retries_of(const std::string& op_id) {
  auto& st = m->retries_of;
  st.reset();
  st.bind(1, op_id);
  std::vector<std::string> out;
  while (st.executeStep()) out.push_back(column_text(st, 0));
  st.reset();
  return out;
}

OperationStats SqliteStoreReader::stats(int64_t now, const std::optional<std::string>& owner, int window_s) {
  return read_operation_stats(m->db, now, owner, window_s);
}

std::vector<HistoryEntry> SqliteStoreReader::history(const std::string& op_id) {
  auto& st = m->history;
  st.reset();
  st.bind(1, op_id);
  std::vector<HistoryEntry> out;
  while (st.executeStep()) out.push_back(sqlite_rows::read_history(st, op_id));
  st.reset();
  return out;
}

std::vector<Change> SqliteStoreReader::changes_after(int64_t after, int limit, const std::string& op_id) {
  auto& st = op_id.empty() ? m->changes_after : m->changes_after_op;
  st.reset();
  int i = 1;
  if (!op_id.empty()) st.bind(i++, op_id);
  st.bind(i++, static_cast<int64_t>(after));
  st.bind(i++, limit);
  std::vector<Change> out;
  while (st.executeStep()) {
    Change c;
    c.seq = st.getColumn(0).getInt64();
    c.op.state = parse_state(column_text(st, 2)).value_or(OpState::failed);
    c.kind = parse_history_kind(column_text(st, 1)).value_or(history_kind_of(c.op.state));
    c.op.code = column_text(st, 3);
    c.op.message = column_text(st, 4);
    c.op.updated_at = st.getColumn(5).getInt64();
    c.op.seq = st.getColumn(6).getInt64();
    c.op.id = column_text(st, 7);
    c.op.name = column_text(st, 8);
    c.op.service = column_text(st, 9);
    c.op.resource = column_text(st, 10);
    c.op.origin = column_text(st, 11);
    c.op.owner = column_text(st, 12);
    c.op.attempt = st.getColumn(13).getInt();
    c.op.created_at = st.getColumn(14).getInt64();
    c.op.cancel_requested = st.getColumn(15).getInt() != 0;
    c.op.retry_of = column_text(st, 16);
    c.op.worker = column_text(st, 17);
    c.op.step_count = st.getColumn(18).getInt();
    c.step = column_text(st, 19);
    if (!c.step.empty()) {
      c.request_id = is_compensation_kind(c.kind) ? saga::compensation_request_id(c.op.id, c.step)
                                                  : saga::step_request_id(c.op.id, c.step);
    }
    // History keeps no attempt count; at acceptance it was 0 for certain.
    if (c.kind == HistoryKind::accepted) c.op.attempt = 0;
    out.push_back(std::move(c));
  }
  st.reset();
  // A saga's steps as they are now (history keeps no step states): one
  // query per saga operation in the page.
  std::unordered_map<int64_t, std::vector<StepView>> steps;
  for (Change& c : out) {
    if (c.op.step_count <= 0) continue;
    auto it = steps.find(c.op.seq);
    if (it == steps.end()) it = steps.emplace(c.op.seq, m->saga_rows.read_views(c.op.seq)).first;
    c.op.steps = it->second;
  }
  return out;
}

std::optional<std::pair<std::string, std::string>> SqliteStoreReader::idempotency_key(const std::string& owner,
                                                                               const std::string& key) {
  auto& st = m->get_key;
  st.reset();
  st.bind(1, owner);
  st.bind(2, key);
  std::optional<std::pair<std::string, std::string>> out;
  if (st.executeStep()) out = std::make_pair(column_text(st, 0), column_text(st, 1));
  st.reset();
  return out;
}

std::optional<Resource> SqliteStoreReader::get_resource(const std::string& path) {
  auto& st = m->get_resource;
  st.reset();
  st.bind(1, path);
  std::optional<Resource> out;
  if (st.executeStep()) {
    out = Resource{column_text(st, 0), nlohmann::json::parse(column_text(st, 1), nullptr, false),
                   st.getColumn(2).getInt64(), column_text(st, 3)};
  }
  st.reset();
  return out;
}

std::vector<Resource> SqliteStoreReader::list_resources(const std::string& collection,
                                                  const std::string& after, int limit,
                                                  const std::optional<std::string>& owner) {
  auto& st = owner ? m->list_resources_owned : m->list_resources;
  st.reset();
  // The paths of a collection sort between "C/" and "C0" ('0' follows '/').
  std::string low = collection + "/";
  if (after > low) low = after;
  int i = 1;
  st.bind(i++, low);
  st.bind(i++, collection + "0");
  st.bind(i++, collection);
  if (owner) st.bind(i++, *owner);
  st.bind(i++, limit);
  std::vector<Resource> out;
  while (st.executeStep()) {
    out.push_back(Resource{column_text(st, 0),
                           nlohmann::json::parse(column_text(st, 1), nullptr, false),
                           st.getColumn(2).getInt64(), column_text(st, 3)});
  }
  st.reset();
  return out;
}

// ---------------------------------------------------------------- pool

ReaderOpener sqlite_reader_opener(std::string path) {
  return [path = std::move(path)]() -> Result<std::unique_ptr<StoreReader>> {
    auto r = SqliteStoreReader::open(path);
    if (!r) return Error{r.error()};
    return std::unique_ptr<StoreReader>(std::move(r.value()));
  };
}

ReaderPool::ReaderPool(const std::string& sqlite_path, size_t max_open)
    : ReaderPool(sqlite_reader_opener(sqlite_path), max_open) {}

}  // namespace asyncops
