#pragma once
// Operation statistics over the store: counts by state and by command, the
// backlog, the oldest pending operation and recent rates. One read
// transaction, so the figures agree with each other. Served as GET /stats
// and printed by `asyncops stats` (over HTTP, or from the file when no
// daemon is reachable): both use stats_json(), so the documents match.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace SQLite {
class Database;
}  // namespace SQLite

namespace asyncops {

struct OperationStats {
  int64_t at = 0;  // when the figures were read, ms since epoch
  // By state, every state present (0 when none); by command name, the same
  // per command that has operations.
  std::map<std::string, int64_t> counts;
  std::map<std::string, std::map<std::string, int64_t>> by_command;
  int64_t total = 0;
  std::string oldest_pending_id;  // "" when nothing is pending
  int64_t oldest_pending_created_at = 0;
  int64_t created_last_1m = 0;
  int64_t created_last_5m = 0;
  // History entries of each kind (accepted, completed, rejected, failed)
  // recorded in the last window_s seconds.
  int window_s = 10;
  std::map<std::string, int64_t> window_counts;
};

// Reads the statistics of db (an open connection to the store) at now.
// With owner set, only that owner's operations count. Throws what SQLiteCpp
// throws; callers wrap it.
OperationStats read_operation_stats(SQLite::Database& db, int64_t now, const std::optional<std::string>& owner,
                                    int window_s = 10);

// The document of GET /stats (docs/openapi.yaml, Stats):
// {at, total, counts, by_state (the same as counts, the older name),
//  by_command, backlog, oldest_pending, created_last_1m, created_last_5m,
//  rate_1m_per_second, rate_5m_per_second,
//  rates: {window_s, accepted, completed, rejected, failed}} (rates per second).
nlohmann::json stats_json(const OperationStats& s);

}  // namespace asyncops
