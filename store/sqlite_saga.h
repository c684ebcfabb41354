#pragma once
// A saga's rows in the SQLite store (issue 14; docs/design/sagas.md §4): the
// saga_steps table, one row per step of a saga operation, written with the
// operation in the accept transaction and changed in the transaction of each
// event, give-up or cancel that moves the saga. The saga's logic is the pure
// saga::next; this file only loads a SagaState and writes back what changed.
// Used by the writer and the readers of store/sqlite_store.cpp alone.
#include <cstdint>
#include <memory>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/operation.h"
#include "store/saga.h"

namespace asyncops::sqlite_saga {

// Creates saga_steps and adds operations.steps and history.step to a store
// made before them (each checked with pragma_table_info first, as
// init_store does for its other columns). Idempotent.
void migrate(SQLite::Database& db);

// The saga rows of one connection. Each statement is compiled on its first
// use and kept: compiling them for every event was a large share of the
// commit thread under a saga load (bench/saga.sh). Every method resets its
// statement before it returns, so no read stays open between calls. One
// thread at a time, like the connection.
class Rows {
 public:
  explicit Rows(SQLite::Database& db);
  ~Rows();
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  // The plan's rows for the operation op_seq, every step waiting.
  void insert_steps(int64_t op_seq, const std::vector<saga::StepPlan>& plan);
  // The saga of op (its row, with op.step_count > 0) from its steps' rows,
  // in plan order, data included.
  saga::SagaState load(const OperationRecord& op);
  // Writes the rows of the steps whose status differs between before and
  // after (the same saga, the same plan).
  void write_changed_steps(int64_t op_seq, const saga::SagaState& before, const saga::SagaState& after);
  // The steps of op_seq for readers: plan and status, without data.
  std::vector<StepView> read_views(int64_t op_seq);

 private:
  SQLite::Statement& statement(std::unique_ptr<SQLite::Statement>& slot, const std::string& sql);
  SQLite::Database& m_db;
  std::unique_ptr<SQLite::Statement> m_insert, m_load, m_update, m_views;
};

// read_views for a one-off reader (the store tools).
std::vector<StepView> read_views(SQLite::Database& db, int64_t op_seq);

// The highest attempt of any step or compensation: a saga operation's
// "attempt" (docs/design/sagas.md §7).
int highest_attempt(const saga::SagaState& s);

}  // namespace asyncops::sqlite_saga
