#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "workers/service_db.h"

using asyncops::ServiceDb;

TEST_CASE("service db: a statement is compiled once and comes back reset, without its bindings") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER)");
  ServiceDb sdb(db);

  SQLite::Statement& ins = sdb.prepare("INSERT INTO t(k, v) VALUES (?, ?)");
  ins.bind(1, "a");
  ins.bind(2, 1);
  ins.exec();
  SQLite::Statement& again = sdb.prepare(std::string("INSERT INTO t(k, v) VALUES (?, ?)"));
  CHECK(&again == &ins);
  CHECK(sdb.size() == 1);
  again.bind(1, "b");  // ?2 was cleared: NULL, not the 1 bound before
  again.exec();

  SQLite::Statement& sel = sdb.prepare("SELECT v FROM t WHERE k = ?");
  sel.bind(1, "b");
  REQUIRE(sel.executeStep());
  CHECK(sel.getColumn(0).isNull());
  CHECK(sdb.size() == 2);

  // A statement left mid-read is reset by reset_all, so the table can be
  // written again inside a savepoint that is then released.
  sdb.prepare("SAVEPOINT s").exec();
  SQLite::Statement& all = sdb.prepare("SELECT k FROM t ORDER BY k");
  REQUIRE(all.executeStep());
  sdb.reset_all();
  SQLite::Statement& del = sdb.prepare("DELETE FROM t WHERE k = ?");
  del.bind(1, "a");
  CHECK(del.exec() == 1);
  sdb.prepare("RELEASE s").exec();
  SQLite::Statement& count = sdb.prepare("SELECT count(*) FROM t");
  REQUIRE(count.executeStep());
  CHECK(count.getColumn(0).getInt() == 1);
}

TEST_CASE("service db: a statement that does not compile throws and is not kept") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  ServiceDb sdb(db);
  CHECK_THROWS_AS(sdb.prepare("SELECT * FROM missing"), SQLite::Exception);
  CHECK(sdb.size() == 0);
}
