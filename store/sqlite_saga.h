#pragma once
// A saga's rows in the SQLite store (issue 14; docs/design/sagas.md §4): the
// saga_steps table, one row per step of a saga operation, written with the
// operation in the accept transaction and changed in the transaction of each
// event, give-up or cancel that moves the saga. The saga's logic is the pure
// saga::next; this file only loads a SagaState and writes back what changed.
// Used by the writer and the readers of store/sqlite_store.cpp alone.
#include <cstdint>
#include <vector>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store/operation.h"
#include "store/saga.h"

namespace asyncops::sqlite_saga {

// Creates saga_steps and adds operations.steps and history.step to a store
// made before them (each checked with pragma_table_info first, as
// init_store does for its other columns). Idempotent.
void migrate(SQLite::Database& db);

// The plan's rows for the operation op_seq, every step waiting.
void insert_steps(SQLite::Database& db, int64_t op_seq, const std::vector<saga::StepPlan>& plan);

// The saga of op (its row, with op.step_count > 0) from its steps' rows, in
// plan order, data included.
saga::SagaState load(SQLite::Database& db, const OperationRecord& op);

// Writes the rows of the steps whose status differs between before and
// after (the same saga, the same plan).
void write_changed_steps(SQLite::Database& db, int64_t op_seq, const saga::SagaState& before,
                         const saga::SagaState& after);

// The steps of op_seq for readers: plan and status, without data.
std::vector<StepView> read_views(SQLite::Database& db, int64_t op_seq);

// Deletes the operation's steps (prune, forget).
void delete_steps(SQLite::Database& db, int64_t op_seq);

// The highest attempt of any step or compensation: a saga operation's
// "attempt" (docs/design/sagas.md §7).
int highest_attempt(const saga::SagaState& s);

}  // namespace asyncops::sqlite_saga
