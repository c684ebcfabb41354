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

// Every value is bound; only fixed clause texts are concatenated.
std::string owner_clause(const std::optional<std::string>& owner, const char* prefix) {
  // A non-empty owner repeats the WHERE term of the partial index
  // operations_by_owner_set, which SQLite needs to use it.
  if (!owner) return std::string();
  return std::string(prefix) + (owner->empty() ? "owner = ?" : "owner = ? AND owner <> ''");
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

  SQLite::Statement by(db, "SELECT name, state, count(*) FROM operations" + owner_clause(owner, " WHERE ") +
                               " GROUP BY name, state");
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

  SQLite::Statement oldest(db, "SELECT id, created_at FROM operations WHERE state = 'pending'" +
                                   owner_clause(owner, " AND ") + " ORDER BY seq LIMIT 1");
  if (owner) oldest.bind(1, *owner);
  if (oldest.executeStep()) {
    s.oldest_pending_id = text(oldest, 0);
    s.oldest_pending_created_at = oldest.getColumn(1).getInt64();
  }

  // Recent operations and history, newest first by seq (both keys): the
  // scan stops at the first row older than the window, so its cost follows
  // the recent rate, not the size of the store. Times follow seq: one
  // writer stamps both as it commits.
  SQLite::Statement recent(db, "SELECT created_at FROM operations" + owner_clause(owner, " WHERE ") +
                                   " ORDER BY seq DESC");
  if (owner) recent.bind(1, *owner);
  while (recent.executeStep()) {
    int64_t created = recent.getColumn(0).getInt64();
    if (created < now - 300000) break;
    ++s.created_last_5m;
    if (created >= now - 60000) ++s.created_last_1m;
  }
  std::string hist_sql = "SELECT h.kind, h.at FROM history h";
  if (owner) hist_sql += " JOIN operations o ON o.seq = h.op_seq WHERE o.owner = ?";
  // As owner_clause: without the repeated term SQLite scans all of history.
  if (owner && !owner->empty()) hist_sql += " AND o.owner <> ''";
  hist_sql += " ORDER BY h.seq DESC";
  SQLite::Statement hist(db, hist_sql);
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
