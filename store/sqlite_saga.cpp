#include "store/sqlite_saga.h"
#include "shared/json_text.h"

#include <algorithm>

namespace asyncops::sqlite_saga {
namespace {

const char* k_saga_schema = R"SQL(
CREATE TABLE IF NOT EXISTS saga_steps(
  op_seq          INTEGER NOT NULL,
  idx             INTEGER NOT NULL,
  name            TEXT NOT NULL,
  service         TEXT NOT NULL,
  command         TEXT NOT NULL,
  compensate      TEXT,
  timeout_ms      INTEGER NOT NULL DEFAULT 0,
  max_attempts    INTEGER NOT NULL DEFAULT 0,
  state           TEXT NOT NULL,
  code            TEXT,
  message         TEXT,
  attempt         INTEGER NOT NULL DEFAULT 0,
  started_at      INTEGER,
  ended_at        INTEGER,
  data            TEXT,
  comp_state      TEXT NOT NULL DEFAULT 'none',
  comp_code       TEXT,
  comp_message    TEXT,
  comp_attempt    INTEGER NOT NULL DEFAULT 0,
  comp_started_at INTEGER,
  comp_ended_at   INTEGER,
  PRIMARY KEY(op_seq, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS saga_steps_by_name ON saga_steps(op_seq, name);
)SQL";

// The status columns, in the order read_status reads them from column `at`.
const char* k_status_columns =
    "state, code, message, attempt, started_at, ended_at, comp_state, comp_code, comp_message, comp_attempt, "
    "comp_started_at, comp_ended_at";

std::string text_of(SQLite::Statement& st, int i) {
  auto c = st.getColumn(i);
  return c.isNull() ? std::string() : c.getString();
}
int64_t int_of(SQLite::Statement& st, int i) {
  auto c = st.getColumn(i);
  return c.isNull() ? 0 : c.getInt64();
}

void bind_text(SQLite::Statement& st, int i, const std::string& s) {
  if (s.empty()) st.bind(i); else st.bind(i, s);
}
void bind_time(SQLite::Statement& st, int i, int64_t ms) {
  if (ms > 0) st.bind(i, static_cast<int64_t>(ms)); else st.bind(i);
}

saga::StepPlan read_plan(SQLite::Statement& st) {
  saga::StepPlan p;
  p.name = text_of(st, 0);
  p.service = text_of(st, 1);
  p.command = text_of(st, 2);
  p.compensate = text_of(st, 3);
  p.timeout_ms = int_of(st, 4);
  p.max_attempts = static_cast<int>(int_of(st, 5));
  return p;
}

// An unknown state (a damaged row) reads as failed, so the saga ends
// rather than waits for a step that cannot move.
saga::StepStatus read_status(SQLite::Statement& st, int at) {
  saga::StepStatus s;
  s.state = saga::parse_step_state(text_of(st, at)).value_or(saga::StepState::failed);
  s.code = text_of(st, at + 1);
  s.message = text_of(st, at + 2);
  s.attempt = static_cast<int>(int_of(st, at + 3));
  s.started_at = int_of(st, at + 4);
  s.ended_at = int_of(st, at + 5);
  s.compensation.state = saga::parse_comp_state(text_of(st, at + 6)).value_or(saga::CompState::failed);
  s.compensation.code = text_of(st, at + 7);
  s.compensation.message = text_of(st, at + 8);
  s.compensation.attempt = static_cast<int>(int_of(st, at + 9));
  s.compensation.started_at = int_of(st, at + 10);
  s.compensation.ended_at = int_of(st, at + 11);
  return s;
}

bool same(const saga::CompStatus& a, const saga::CompStatus& b) {
  return a.state == b.state && a.code == b.code && a.message == b.message && a.attempt == b.attempt &&
         a.started_at == b.started_at && a.ended_at == b.ended_at;
}
bool same(const saga::StepStatus& a, const saga::StepStatus& b) {
  return a.state == b.state && a.code == b.code && a.message == b.message && a.attempt == b.attempt &&
         a.started_at == b.started_at && a.ended_at == b.ended_at && a.data == b.data &&
         same(a.compensation, b.compensation);
}

bool has_column(SQLite::Database& db, const char* table, const char* column) {
  SQLite::Statement st(db, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?");
  st.bind(1, table);
  st.bind(2, column);
  return st.executeStep();
}

}  // namespace

void migrate(SQLite::Database& db) {
  db.exec(k_saga_schema);
  // The number of a saga's steps; 0: a plain operation.
  if (!has_column(db, "operations", "steps")) db.exec("ALTER TABLE operations ADD COLUMN steps INTEGER NOT NULL DEFAULT 0");
  // The step a history entry is about; NULL: the operation's own entry.
  if (!has_column(db, "history", "step")) db.exec("ALTER TABLE history ADD COLUMN step TEXT");
}

namespace {
// Resets a kept statement when a method leaves, however it leaves.
struct ResetOnExit {
  SQLite::Statement& st;
  ~ResetOnExit() {
    try {
      st.reset();
      st.clearBindings();
    } catch (...) {  // reset reports the last step's error again: already thrown
    }
  }
};
}  // namespace

Rows::Rows(SQLite::Database& db) : m_db(db) {}
Rows::~Rows() = default;

SQLite::Statement& Rows::statement(std::unique_ptr<SQLite::Statement>& slot, const std::string& sql) {
  if (!slot) slot = std::make_unique<SQLite::Statement>(m_db, sql);
  return *slot;
}

void Rows::insert_steps(int64_t op_seq, const std::vector<saga::StepPlan>& plan) {
  SQLite::Statement& st = statement(m_insert,
                                    "INSERT INTO saga_steps(op_seq, idx, name, service, command, compensate, "
                                    "timeout_ms, max_attempts, state) VALUES (?,?,?,?,?,?,?,?,'waiting')");
  ResetOnExit done{st};
  for (size_t i = 0; i < plan.size(); ++i) {
    st.reset();
    st.bind(1, static_cast<int64_t>(op_seq));
    st.bind(2, static_cast<int64_t>(i));
    st.bind(3, plan[i].name);
    st.bind(4, plan[i].service);
    st.bind(5, plan[i].command);
    bind_text(st, 6, plan[i].compensate);
    st.bind(7, static_cast<int64_t>(plan[i].timeout_ms));
    st.bind(8, plan[i].max_attempts);
    st.exec();
  }
}

saga::SagaState Rows::load(const OperationRecord& op) {
  SQLite::Statement& st = statement(m_load, std::string("SELECT name, service, command, compensate, timeout_ms, "
                                                        "max_attempts, ") +
                                                k_status_columns + ", data FROM saga_steps WHERE op_seq = ? ORDER BY idx");
  ResetOnExit done{st};
  st.bind(1, static_cast<int64_t>(op.seq));
  saga::SagaState s;
  s.op_id = op.id;
  s.op_state = op.state;
  s.code = op.code;
  s.message = op.message;
  s.cancel_requested = op.cancel_requested;
  while (st.executeStep()) {
    s.plan.push_back(read_plan(st));
    saga::StepStatus status = read_status(st, 6);
    if (!st.getColumn(18).isNull()) status.data = nlohmann::json::parse(text_of(st, 18), nullptr, false);
    if (status.data.is_discarded()) status.data = nullptr;
    s.steps.push_back(std::move(status));
  }
  return s;
}

void Rows::write_changed_steps(int64_t op_seq, const saga::SagaState& before, const saga::SagaState& after) {
  SQLite::Statement& st = statement(m_update,
                                    "UPDATE saga_steps SET state = ?, code = ?, message = ?, attempt = ?, "
                                    "started_at = ?, ended_at = ?, data = ?, comp_state = ?, comp_code = ?, "
                                    "comp_message = ?, comp_attempt = ?, comp_started_at = ?, comp_ended_at = ? "
                                    "WHERE op_seq = ? AND idx = ?");
  ResetOnExit done{st};
  for (size_t i = 0; i < after.steps.size(); ++i) {
    const saga::StepStatus& s = after.steps[i];
    if (i < before.steps.size() && same(before.steps[i], s)) continue;
    st.reset();
    st.bind(1, saga::to_string(s.state));
    bind_text(st, 2, s.code);
    bind_text(st, 3, s.message);
    st.bind(4, s.attempt);
    bind_time(st, 5, s.started_at);
    bind_time(st, 6, s.ended_at);
    if (s.data.is_null()) st.bind(7);
    else st.bind(7, json_text(s.data));
    st.bind(8, saga::to_string(s.compensation.state));
    bind_text(st, 9, s.compensation.code);
    bind_text(st, 10, s.compensation.message);
    st.bind(11, s.compensation.attempt);
    bind_time(st, 12, s.compensation.started_at);
    bind_time(st, 13, s.compensation.ended_at);
    st.bind(14, static_cast<int64_t>(op_seq));
    st.bind(15, static_cast<int64_t>(i));
    st.exec();
  }
}

std::vector<StepView> Rows::read_views(int64_t op_seq) {
  SQLite::Statement& st = statement(m_views, std::string("SELECT name, service, command, compensate, timeout_ms, "
                                                         "max_attempts, ") +
                                                 k_status_columns + " FROM saga_steps WHERE op_seq = ? ORDER BY idx");
  ResetOnExit done{st};
  st.bind(1, static_cast<int64_t>(op_seq));
  std::vector<StepView> out;
  while (st.executeStep()) out.push_back(StepView{read_plan(st), read_status(st, 6)});
  return out;
}

std::vector<StepView> read_views(SQLite::Database& db, int64_t op_seq) { return Rows(db).read_views(op_seq); }

int highest_attempt(const saga::SagaState& s) {
  int out = 0;
  for (const saga::StepStatus& st : s.steps) out = std::max({out, st.attempt, st.compensation.attempt});
  return out;
}

}  // namespace asyncops::sqlite_saga
