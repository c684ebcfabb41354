#include <sqlite3.h>

#include "store/wal_batching.h"
#include "workers/worker_main.h"

int main(int argc, char** argv) {
  // Before any connection opens: no process-wide memory statistics, whose
  // mutex every SQLite allocation would otherwise take.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  asyncops::install_wal_batching();
  return asyncops::worker_main(argc, argv);
}
