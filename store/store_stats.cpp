#include "store/store_stats.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/clock.h"
#include "store/operation.h"

namespace asyncops {
namespace {

// The history kinds whose recent counts the stats show.
constexpr HistoryKind k_rate_kinds[] = {HistoryKind::accepted, HistoryKind::completed, HistoryKind::rejected,
                                        HistoryKind::failed};

std::string text(SQLite::Statement& st, int i) {
  auto c = st.getColumn(i);
  return c.isNull() ? std::string() : c.getString();
}

// Appends the filter by owner, if any, to sql: the query's first term
// (WHERE) or a further one (AND). Every value is bound, and only literals
// are appended (tests/unit/test_access.cpp checks it). A non-empty owner
// repeats the WHERE term of the partial index operations_by_owner_set,
// which SQLite needs to use it; a filter by '' reads the table.
void add_owner_filter(std::string& sql, const std::optional<std::string>& owner, bool first_term) {
  if (!owner) return;
  if (first_term) {
    sql += " WHERE owner = ?";
  } else {
    sql += " AND owner = ?";
  }
  if (!owner->empty()) sql += " AND owner <> ''";
}

}  // namespace

OperationStats read_operation_stats(SQLite::Database& db, int64_t now, const std::optional<std::string>& owner,
                                    int window_s) {
  OperationStats s;
  s.at = now;
  s.window_s = window_s;
  for (const StateName& st : k_state_names) s.counts[st.name] = 0;
  for (HistoryKind k : k_rate_kinds) s.window_counts[to_string(k)] = 0;
  SQLite::Transaction snapshot(db);  // one consistent read (a read transaction: nothing is written)

  std::string sql = "SELECT name, state, count(*) FROM operations";
  add_owner_filter(sql, owner, true);
  sql += " GROUP BY name, state";
  SQLite::Statement by(db, sql);
  if (owner) by.bind(1, *owner);
  while (by.executeStep()) {
    std::string name = text(by, 0), state = text(by, 1);
    int64_t n = by.getColumn(2).getInt64();
    s.total += n;
    s.counts[state] += n;
    auto& c = s.by_command[name];
    if (c.empty()) {
      for (const StateName& st : k_state_names) c[st.name] = 0;
    }
    c[state] += n;
    c["total"] += n;
  }

  sql = "SELECT id, created_at FROM operations WHERE state = 'pending'";
  add_owner_filter(sql, owner, false);
  sql += " ORDER BY seq LIMIT 1";
  SQLite::Statement oldest(db, sql);
  if (owner) oldest.bind(1, *owner);
  if (oldest.executeStep()) {
    s.oldest_pending_id = text(oldest, 0);
    s.oldest_pending_created_at = oldest.getColumn(1).getInt64();
  }

  // Recent operations and history, newest first by seq (both keys): the
  // scan stops at the first row older than the window, so its cost follows
  // the recent rate, not the size of the store. Times follow seq: one
  // writer stamps both as it commits.
  sql = "SELECT created_at FROM operations";
  add_owner_filter(sql, owner, true);
  sql += " ORDER BY seq DESC";
  SQLite::Statement recent(db, sql);
  if (owner) recent.bind(1, *owner);
  while (recent.executeStep()) {
    int64_t created = recent.getColumn(0).getInt64();
    if (created < now - 300000) break;
    ++s.created_last_5m;
    if (created >= now - 60000) ++s.created_last_1m;
  }
  sql = "SELECT h.kind, h.at FROM history h";
  if (owner) sql += " JOIN operations o ON o.seq = h.op_seq WHERE o.owner = ?";
  // As add_owner_filter: without the repeated term SQLite scans all of history.
  if (owner && !owner->empty()) sql += " AND o.owner <> ''";
  sql += " ORDER BY h.seq DESC";
  SQLite::Statement hist(db, sql);
  if (owner) hist.bind(1, *owner);
  int64_t since = now - static_cast<int64_t>(window_s) * 1000;
  while (hist.executeStep()) {
    if (hist.getColumn(1).getInt64() < since) break;
    auto it = s.window_counts.find(text(hist, 0));
    if (it != s.window_counts.end()) ++it->second;
  }
  snapshot.commit();
  return s;
}

nlohmann::json stats_json(const OperationStats& s) {
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [k, v] : s.counts) counts[k] = v;
  nlohmann::json by_command = nlohmann::json::object();
  for (const auto& [name, c] : s.by_command) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [k, v] : c) j[k] = v;
    by_command[name] = std::move(j);
  }
  nlohmann::json oldest;  // null when nothing is pending
  if (!s.oldest_pending_id.empty()) {
    oldest = {{"id", s.oldest_pending_id},
              {"created_at", format_rfc3339_ms(s.oldest_pending_created_at)},
              {"age_seconds", static_cast<double>(s.at - s.oldest_pending_created_at) / 1000.0}};
  }
  nlohmann::json rates = {{"window_s", s.window_s}};
  for (const auto& [k, v] : s.window_counts) rates[k] = static_cast<double>(v) / s.window_s;
  auto count = [&](const char* state) {
    auto it = s.counts.find(state);
    return it == s.counts.end() ? int64_t{0} : it->second;
  };
  return {{"at", format_rfc3339_ms(s.at)},
          {"total", s.total},
          {"counts", counts},
          {"by_state", counts},
          {"by_command", std::move(by_command)},
          {"backlog", count("pending") + count("processing")},
          {"oldest_pending", std::move(oldest)},
          {"created_last_1m", s.created_last_1m},
          {"created_last_5m", s.created_last_5m},
          {"rate_1m_per_second", static_cast<double>(s.created_last_1m) / 60.0},
          {"rate_5m_per_second", static_cast<double>(s.created_last_5m) / 300.0},
          {"rates", std::move(rates)}};
}

}  // namespace asyncops
