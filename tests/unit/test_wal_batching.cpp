// store/wal_batching: a WAL commit reaches the file in one write, and what
// the file holds when COMMIT returns is what it would hold without the VFS.
#include <sqlite3.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "store/wal_batching.h"
#include "store_fixture.h"

namespace asyncops {
namespace {

using test::TempDir;

// The unix VFS's pwrite, counted, and failed with ENOSPC on demand.
std::atomic<int> g_pwrites{0};
std::atomic<bool> g_disk_full{false};
sqlite3_syscall_ptr g_real_pwrite = nullptr;
sqlite3_syscall_ptr g_real_pwrite64 = nullptr;

template <sqlite3_syscall_ptr* Real>
ssize_t counted(int fd, const void* buf, size_t n, off_t off) {
  g_pwrites++;
  if (g_disk_full) {
    errno = ENOSPC;
    return -1;
  }
  return reinterpret_cast<ssize_t (*)(int, const void*, size_t, off_t)>(*Real)(fd, buf, n, off);
}

// While alive, every pwrite of the unix VFS (in this process) is counted.
struct CountedWrites {
  sqlite3_vfs* unix_vfs = sqlite3_vfs_find("unix");
  CountedWrites() {
    g_real_pwrite = unix_vfs->xGetSystemCall(unix_vfs, "pwrite");
    g_real_pwrite64 = unix_vfs->xGetSystemCall(unix_vfs, "pwrite64");
    if (g_real_pwrite)
      unix_vfs->xSetSystemCall(unix_vfs, "pwrite",
                               reinterpret_cast<sqlite3_syscall_ptr>(counted<&g_real_pwrite>));
    if (g_real_pwrite64)
      unix_vfs->xSetSystemCall(unix_vfs, "pwrite64",
                               reinterpret_cast<sqlite3_syscall_ptr>(counted<&g_real_pwrite64>));
    g_disk_full = false;
  }
  ~CountedWrites() {
    g_disk_full = false;
    if (g_real_pwrite) unix_vfs->xSetSystemCall(unix_vfs, "pwrite", g_real_pwrite);
    if (g_real_pwrite64) unix_vfs->xSetSystemCall(unix_vfs, "pwrite64", g_real_pwrite64);
  }
};

sqlite3_vfs* batching_vfs() {
  static sqlite3_vfs* vfs =
      register_wal_batching_vfs("test-wal-batching", sqlite3_vfs_find("unix"));
  return vfs;
}

struct Db {
  sqlite3* db = nullptr;
  Db(const std::string& path, const char* vfs) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) ==
            SQLITE_OK);
  }
  ~Db() { sqlite3_close(db); }
  int exec(const std::string& sql) {
    return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  }
  void must(const std::string& sql) {
    INFO(sql);
    REQUIRE(exec(sql) == SQLITE_OK);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What a crash right now would leave: the database and its WAL as the
// kernel holds them (no -shm, so the copy recovers from the WAL), opened
// with SQLite's own VFS. Returns the row count of t, after checking that
// the copy is intact.
long long rows_after_crash(const std::string& dir, const std::string& copy_dir) {
  std::system(("rm -f '" + copy_dir + "'/c.db*").c_str());
  for (const char* suffix : {"", "-wal"}) {
    std::ofstream out(copy_dir + "/c.db" + suffix, std::ios::binary);
    out << read_file(dir + "/t.db" + suffix);
  }
  Db copy(copy_dir + "/c.db", "unix");
  REQUIRE(copy.text("PRAGMA integrity_check") == "ok");
  return std::stoll(copy.text("SELECT count(*) FROM t"));
}

// Without the index, a row touches fewer pages: a transaction's reads then
// meet its own spilled frames.
void open_wal(Db& d, const char* sync, bool index = true) {
  d.must("PRAGMA journal_mode=WAL");
  d.must(std::string("PRAGMA synchronous=") + sync);
  d.must("PRAGMA wal_autocheckpoint=0");  // checkpoints only where a test asks
  d.must("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body BLOB)");
  if (index) d.must("CREATE INDEX IF NOT EXISTS t_by_body ON t(body)");
}

// Frames in the WAL, through the WAL hook (called after each commit).
int g_wal_frames = 0;
int on_wal(void*, sqlite3*, const char*, int frames) {
  g_wal_frames = frames;
  return SQLITE_OK;
}

}  // namespace

TEST_CASE("a WAL commit of many pages reaches the file in one write, not two per page",
          "[wal_batching]") {
  REQUIRE(batching_vfs() != nullptr);
  TempDir dir;
  long long frames[2] = {0, 0};
  int writes[2] = {0, 0};
  const char* vfs_names[2] = {"unix", "test-wal-batching"};
  for (int i = 0; i < 2; i++) {
    std::string path = dir.path + "/w" + std::to_string(i) + ".db";
    Db d(path, vfs_names[i]);
    open_wal(d, "NORMAL");
    sqlite3_wal_hook(d.db, on_wal, nullptr);
    d.must("INSERT INTO t(body) VALUES (randomblob(100))");  // the WAL and its header exist
    int before_frames = g_wal_frames;
    CountedWrites counted;
    d.must("BEGIN");
    for (int r = 0; r < 20; r++) d.must("INSERT INTO t(body) VALUES (randomblob(600))");
    g_pwrites = 0;
    d.must("COMMIT");
    writes[i] = g_pwrites;
    frames[i] = g_wal_frames - before_frames;
  }
  INFO("frames " << frames[0] << ", " << frames[1] << "; writes " << writes[0] << ", "
                 << writes[1]);
  REQUIRE(frames[1] >= 4);
  REQUIRE(frames[1] < 31);            // so one write of at most 31 pages holds it
  CHECK(writes[0] == 2 * frames[0]);  // SQLite's own: a header and a page per frame
  CHECK(writes[1] == 1);
}

TEST_CASE("every committed transaction is in the WAL file when COMMIT returns", "[wal_batching]") {
  REQUIRE(batching_vfs() != nullptr);
  const char* sync = GENERATE("NORMAL", "FULL");
  TempDir dir, copies;
  Db d(dir.path + "/t.db", "test-wal-batching");
  open_wal(d, sync);
  Db checkpointer(dir.path + "/t.db", "test-wal-batching");
  long long committed = 0;
  for (int txn = 0; txn < 40; txn++) {
    // Sizes under and over the 31 pages of one write and the 1 MiB bound;
    // every 10th transaction also rewrites rows of earlier ones.
    int rows = txn % 7 == 3 ? 900 : 1 + (txn * 13) % 40;
    d.must("BEGIN");
    for (int r = 0; r < rows; r++)
      d.must("INSERT INTO t(body) VALUES (randomblob(" + std::to_string(200 + r % 900) + "))");
    if (txn % 10 == 9) d.must("UPDATE t SET body = randomblob(300) WHERE id % 3 = 0");
    d.must("COMMIT");
    committed += rows;
    INFO("sync " << sync << ", transaction " << txn);
    REQUIRE(rows_after_crash(dir.path, copies.path) == committed);
    // Now and then the WAL is copied back, so the next commit starts it
    // again at its beginning (a new WAL header, frames written over old ones).
    if (txn % 9 == 4) REQUIRE(checkpointer.exec("PRAGMA wal_checkpoint(PASSIVE)") == SQLITE_OK);
  }
}

TEST_CASE(
    "a transaction larger than the page cache, which spills and rewrites frames, commits whole",
    "[wal_batching]") {
  REQUIRE(batching_vfs() != nullptr);
  TempDir dir, copies;
  Db d(dir.path + "/t.db", "test-wal-batching");
  open_wal(d, "NORMAL");
  d.must("PRAGMA cache_size=10");  // pages: the transaction below spills
  d.must("BEGIN");
  for (int r = 0; r < 2000; r++) d.must("INSERT INTO t(body) VALUES (randomblob(500))");
  d.must(
      "UPDATE t SET body = randomblob(400)");  // the spilled pages again, in the same transaction
  d.must("COMMIT");
  REQUIRE(rows_after_crash(dir.path, copies.path) == 2000);
  d.must("DELETE FROM t WHERE id % 2 = 0");
  REQUIRE(rows_after_crash(dir.path, copies.path) == 1000);
}

TEST_CASE("a commit whose write fails fails, and loses nothing committed before it",
          "[wal_batching]") {
  REQUIRE(batching_vfs() != nullptr);
  TempDir dir, copies;
  Db d(dir.path + "/t.db", "test-wal-batching");
  open_wal(d, "NORMAL");
  d.must("INSERT INTO t(body) VALUES (randomblob(100))");
  CountedWrites counted;
  d.must("BEGIN");
  for (int r = 0; r < 30; r++) d.must("INSERT INTO t(body) VALUES (randomblob(700))");
  g_disk_full = true;
  int rc = d.exec("COMMIT");
  g_disk_full = false;
  CHECK((rc & 0xff) == SQLITE_FULL);
  d.exec("ROLLBACK");
  REQUIRE(d.text("SELECT count(*) FROM t") == "1");
  REQUIRE(rows_after_crash(dir.path, copies.path) == 1);
  d.must("INSERT INTO t(body) VALUES (randomblob(100))");
  REQUIRE(d.text("SELECT count(*) FROM t") == "2");
  REQUIRE(rows_after_crash(dir.path, copies.path) == 2);
}

TEST_CASE("a write that fails inside a transaction never lets it commit without its frames",
          "[wal_batching]") {
  // The gathered frames of a transaction are written at a later call, which
  // may be a read: SQLite then fails only the statement and keeps the
  // transaction. Whatever it answers after that, COMMIT included, must be
  // what the file holds.
  REQUIRE(batching_vfs() != nullptr);
  const std::string spill =
      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200) "
      "INSERT INTO t(body) SELECT randomblob(500) FROM c";
  for (bool savepoint : {false, true}) {
    INFO((savepoint ? "a handler's savepoint, as asyncops-worker runs one" : "a plain transaction"));
    TempDir dir, copies;
    Db d(dir.path + "/t.db", "test-wal-batching");
    // Not open_wal's table: with this one (no index, NOT NULL) the failing
    // statement's read is what writes the gathered frames; with open_wal's,
    // the same steps passed before the fix too.
    d.must("PRAGMA journal_mode=WAL");
    d.must("PRAGMA wal_autocheckpoint=0");
    d.must("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
    d.must("INSERT INTO t(body) VALUES (randomblob(100))");
    d.must("PRAGMA cache_size=10");  // pages: the transaction spills
    CountedWrites counted;
    d.must("BEGIN");
    d.must(spill);  // gathered, partly spilled
    if (savepoint) d.must("SAVEPOINT handler");
    g_disk_full = true;  // for one statement that reads the WAL
    int rc = d.exec("INSERT INTO t(body) SELECT body FROM t WHERE id <= 3");
    g_disk_full = false;
    CHECK(rc != SQLITE_OK);
    if (savepoint) {
      d.exec("ROLLBACK TO handler");
      d.exec("RELEASE handler");
      d.exec("INSERT INTO t(body) VALUES (randomblob(50))");  // the outcome's record
    }
    int commit = d.exec("COMMIT");
    if (!sqlite3_get_autocommit(d.db)) d.exec("ROLLBACK");
    // SQLite may roll the whole transaction back at the failed statement
    // (then the savepoint's outcome record commits on its own); if COMMIT
    // succeeded, every row of the transaction is there.
    CHECK(d.text("PRAGMA integrity_check") == "ok");
    long long rows = std::stoll(d.text("SELECT count(*) FROM t"));
    if (commit == SQLITE_OK) CHECK(rows == (savepoint ? 202 : 201));
    else CHECK(rows <= 2);
    Db other(dir.path + "/t.db", "unix");
    CHECK(other.text("PRAGMA integrity_check") == "ok");
    CHECK(std::stoll(other.text("SELECT count(*) FROM t")) == rows);
    CHECK(rows_after_crash(dir.path, copies.path) == rows);
    // And the connection writes on as before.
    d.must("INSERT INTO t(body) VALUES (randomblob(100))");
    CHECK(rows_after_crash(dir.path, copies.path) == rows + 1);
  }
}

TEST_CASE("frames a transaction in exclusive locking mode rolled back never land over later commits",
          "[wal_batching]") {
  // In exclusive locking mode SQLite takes no shared-memory locks, so the
  // end of a write transaction is the database file's unlock.
  REQUIRE(batching_vfs() != nullptr);
  TempDir dir, copies;
  Db a(dir.path + "/t.db", "test-wal-batching");
  open_wal(a, "NORMAL", /*index=*/false);
  a.must("INSERT INTO t(body) VALUES (randomblob(100))");
  a.must("PRAGMA wal_checkpoint(TRUNCATE)");
  a.must("PRAGMA locking_mode=EXCLUSIVE");
  a.must("PRAGMA cache_size=10");
  a.must("BEGIN");
  a.must("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
         "INSERT INTO t(body) SELECT randomblob(500) FROM c");
  a.must("ROLLBACK");
  a.must("PRAGMA locking_mode=NORMAL");
  a.must("BEGIN IMMEDIATE");
  a.must("COMMIT");  // A lets go of its exclusive lock
  Db b(dir.path + "/t.db", "test-wal-batching");
  b.must("INSERT INTO t(body) VALUES (randomblob(100)), (randomblob(100)), (randomblob(100))");
  CHECK(rows_after_crash(dir.path, copies.path) == 4);
  CHECK(a.text("SELECT count(*) FROM t") == "4");  // A reads the WAL again
  CHECK(a.text("PRAGMA integrity_check") == "ok");
  CHECK(b.text("SELECT count(*) FROM t") == "4");
  CHECK(rows_after_crash(dir.path, copies.path) == 4);
}

TEST_CASE("frames of a transaction that rolled back never land over another connection's commits",
          "[wal_batching]") {
  // A spills frames it gathers, then rolls back. Before it lets go of the
  // write lock, what it gathered goes to the file, as SQLite would have
  // written it: B's commits come after it, and A's later reads write
  // nothing over them.
  REQUIRE(batching_vfs() != nullptr);
  TempDir dir, copies;
  Db a(dir.path + "/t.db", "test-wal-batching");
  open_wal(a, "NORMAL");
  Db b(dir.path + "/t.db", "test-wal-batching");
  a.must("PRAGMA cache_size=10");  // pages: A's transaction spills
  a.must("INSERT INTO t(body) VALUES (randomblob(100))");
  a.must("BEGIN");
  for (int r = 0; r < 300; r++) a.must("INSERT INTO t(body) VALUES (randomblob(500))");
  a.must("ROLLBACK");
  // B's frames cover the whole stretch A wrote.
  for (int txn = 0; txn < 60; txn++) {
    b.must("BEGIN");
    for (int r = 0; r < 5; r++) b.must("INSERT INTO t(body) VALUES (randomblob(600))");
    b.must("COMMIT");
  }
  REQUIRE(a.text("SELECT count(*) FROM t") == "301");  // A reads the WAL again
  REQUIRE(a.text("PRAGMA integrity_check") == "ok");
  REQUIRE(b.text("SELECT count(*) FROM t") == "301");
  REQUIRE(rows_after_crash(dir.path, copies.path) == 301);
}

TEST_CASE("a writer that lets go of the write lock has written everything it gathered", "[wal_batching]") {
  // Frames of a transaction that spilled and then rolled back stay
  // gathered unless something reads the WAL; they must reach the file
  // while the write lock is still held, as SQLite's own writes would.
  sqlite3_vfs* vfs = batching_vfs();
  REQUIRE(vfs != nullptr);
  TempDir dir;
  std::string db_path = dir.path + "/t.db", wal_path = db_path + "-wal";
  // A database name as SQLite's pagers make them: its WAL's name leads
  // back to it.
  sqlite3_filename names = sqlite3_create_filename(db_path.c_str(), (db_path + "-journal").c_str(),
                                                   wal_path.c_str(), 0, nullptr);
  REQUIRE(names != nullptr);
  std::vector<char> db_mem(static_cast<std::size_t>(vfs->szOsFile)), wal_mem(db_mem.size());
  auto* db = reinterpret_cast<sqlite3_file*>(db_mem.data());
  auto* wal = reinterpret_cast<sqlite3_file*>(wal_mem.data());
  int out = 0;
  REQUIRE(vfs->xOpen(vfs, names, db, SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, &out) ==
          SQLITE_OK);
  REQUIRE(vfs->xOpen(vfs, sqlite3_filename_wal(names), wal, SQLITE_OPEN_WAL | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                     &out) == SQLITE_OK);
  std::string header(32, '\0'), frame_header(24, '\0'), page(4096, 'p');
  REQUIRE(wal->pMethods->xWrite(wal, header.data(), 32, 0) == SQLITE_OK);  // written at once
  REQUIRE(wal->pMethods->xWrite(wal, frame_header.data(), 24, 32) == SQLITE_OK);  // not a commit frame
  REQUIRE(wal->pMethods->xWrite(wal, page.data(), 4096, 56) == SQLITE_OK);
  CHECK(read_file(wal_path).size() == 32);  // the frame is gathered
  db->pMethods->xShmLock(db, 0, 1, SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE);  // its answer does not matter here
  CHECK(read_file(wal_path).size() == 32 + 24 + 4096);
  wal->pMethods->xClose(wal);
  db->pMethods->xClose(db);

  // A WAL whose database file this VFS did not open is not paired, so
  // nothing would write its frames at the end of a transaction: it
  // gathers nothing.
  REQUIRE(vfs->xOpen(vfs, sqlite3_filename_wal(names), wal, SQLITE_OPEN_WAL | SQLITE_OPEN_READWRITE, &out) ==
          SQLITE_OK);
  REQUIRE(wal->pMethods->xWrite(wal, frame_header.data(), 24, 32 + 24 + 4096) == SQLITE_OK);
  REQUIRE(wal->pMethods->xWrite(wal, page.data(), 4096, 32 + 2 * 24 + 4096) == SQLITE_OK);
  CHECK(read_file(wal_path).size() == 32 + 2 * (24 + 4096));
  wal->pMethods->xClose(wal);
  sqlite3_free_filename(names);
}

}  // namespace asyncops
