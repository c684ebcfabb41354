#pragma once
// Damaging a SQLite store on purpose, for the tests of what the daemon does
// with a corrupt one. Shared by unit/ and integration/.
#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace asyncops::test {

// Overwrites with garbage the pages whose numbers rootpage_sql selects
// from sqlite_schema (e.g. "SELECT rootpage FROM sqlite_schema WHERE ...");
// returns how many. Opening the store read-write first also copies a WAL
// left by a killed daemon back into the file and removes it, so that no
// good copy of those pages survives in the WAL.
inline size_t overwrite_pages(const std::string& path, const std::string& rootpage_sql) {
  std::vector<int64_t> roots;
  int64_t page_size = 0;
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    page_size = db.execAndGet("PRAGMA page_size").getInt64();
    SQLite::Statement st(db, rootpage_sql);
    while (st.executeStep()) roots.push_back(st.getColumn(0).getInt64());
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  std::string garbage(static_cast<size_t>(page_size), '\xa5');
  for (int64_t root : roots) {
    f.seekp((root - 1) * page_size);
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  REQUIRE(f.good());
  return roots.size();
}

}  // namespace asyncops::test
