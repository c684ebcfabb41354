#pragma once
// Inside the SQLite backend only (store/*.cpp): reading rows of the store's
// tables into the model. Nothing outside store/ includes this file.
#include <SQLiteCpp/Statement.h>

#include <optional>
#include <string>

#include "store/operation.h"

namespace asyncops::sqlite_rows {

// The operations columns, in the order read_operation() reads them.
inline const char* k_op_columns =
    "seq, id, name, service, state, code, message, resource, origin, owner, params, payload, "
    "attempt, created_at, updated_at, cancel_requested, retry_of, worker, steps";

inline std::string column_text(SQLite::Statement& st, int i) {
  auto c = st.getColumn(i);
  return c.isNull() ? std::string() : c.getString();
}

inline OperationRecord read_operation(SQLite::Statement& st) {
  OperationRecord op;
  op.seq = st.getColumn(0).getInt64();
  op.id = column_text(st, 1);
  op.name = column_text(st, 2);
  op.service = column_text(st, 3);
  op.state = parse_state(column_text(st, 4)).value_or(OpState::failed);
  op.code = column_text(st, 5);
  op.message = column_text(st, 6);
  op.resource = column_text(st, 7);
  op.origin = column_text(st, 8);
  op.owner = column_text(st, 9);
  // The light select leaves params and payload NULL: an event never needs them.
  op.params = st.getColumn(10).isNull() ? nlohmann::json::object()
                                        : nlohmann::json::parse(column_text(st, 10), nullptr, false);
  op.payload = st.getColumn(11).isNull() ? nlohmann::json::object()
                                         : nlohmann::json::parse(column_text(st, 11), nullptr, false);
  op.attempt = st.getColumn(12).getInt();
  op.created_at = st.getColumn(13).getInt64();
  op.updated_at = st.getColumn(14).getInt64();
  op.cancel_requested = st.getColumn(15).getInt() != 0;
  op.retry_of = column_text(st, 16);
  op.worker = column_text(st, 17);
  op.step_count = st.getColumn(18).getInt();
  return op;
}

// The operation a prepared statement selects by id (bound as its one
// parameter, columns as read_operation reads them), or nullopt. Leaves st
// reset, ready for the next call.
inline std::optional<OperationRecord> read_operation_by_id(SQLite::Statement& st, const std::string& id) {
  st.reset();
  st.bind(1, id);
  std::optional<OperationRecord> out;
  if (st.executeStep()) out = read_operation(st);
  st.reset();
  return out;
}

// A history row read as (seq, kind, state, code, message, at) from column 0.
inline HistoryEntry read_history(SQLite::Statement& st, std::string op_id) {
  HistoryEntry h;
  h.seq = st.getColumn(0).getInt64();
  h.op_id = std::move(op_id);
  h.state = parse_state(column_text(st, 2)).value_or(OpState::failed);
  h.kind = parse_history_kind(column_text(st, 1)).value_or(history_kind_of(h.state));
  h.code = column_text(st, 3);
  h.message = column_text(st, 4);
  h.at = st.getColumn(5).getInt64();
  h.step = column_text(st, 6);
  return h;
}

}  // namespace asyncops::sqlite_rows
