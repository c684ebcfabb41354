#pragma once
// A service's database, with its statements compiled once.
//
// Compiling SQL (sqlite3_prepare) costs more than running a small
// statement, and a handler runs the same few statements for every command,
// so they are prepared on first use and kept for the life of the worker.
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace asyncops {

class ServiceDb {
 public:
  explicit ServiceDb(SQLite::Database& db);
  ~ServiceDb();
  ServiceDb(const ServiceDb&) = delete;
  ServiceDb& operator=(const ServiceDb&) = delete;

  SQLite::Database& db() { return m_db; }
  // The statement for sql: reset, bindings cleared, ready to bind and run.
  // The reference stays valid for the life of this object; the next
  // prepare() of the same text resets it again.
  SQLite::Statement& prepare(std::string_view sql);
  // Resets every statement, so that none holds a read open across a
  // savepoint release or a commit.
  void reset_all();
  size_t size() const { return m_statements.size(); }

 private:
  struct Entry;
  SQLite::Database& m_db;
  std::unordered_map<std::string_view, std::unique_ptr<Entry>> m_statements;
};

}  // namespace asyncops
