#include "workers/service_db.h"

#include <SQLiteCpp/SQLiteCpp.h>

namespace asyncops {

struct ServiceDb::Entry {
  Entry(SQLite::Database& db, std::string_view text) : sql(text), statement(db, sql) {}
  std::string sql;  // owns the text the map's key views
  SQLite::Statement statement;
};

ServiceDb::ServiceDb(SQLite::Database& db) : m_db(db) {}
ServiceDb::~ServiceDb() = default;

SQLite::Statement& ServiceDb::prepare(std::string_view sql) {
  auto it = m_statements.find(sql);
  if (it == m_statements.end()) {
    auto entry = std::make_unique<Entry>(m_db, sql);
    std::string_view key = entry->sql;
    it = m_statements.emplace(key, std::move(entry)).first;
    return it->second->statement;
  }
  SQLite::Statement& st = it->second->statement;
  st.reset();
  st.clearBindings();
  return st;
}

void ServiceDb::reset_all() {
  for (auto& [sql, entry] : m_statements) entry->statement.reset();
}

}  // namespace asyncops
