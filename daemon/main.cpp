#include <sqlite3.h>

#include "daemon/daemon.h"
#include "daemon/store_health.h"

int main(int argc, char** argv) {
  // Before any connection opens: no process-wide memory statistics, whose
  // mutex every SQLite allocation would otherwise take.
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  // And SQLite's error log, so that corruption met by any connection makes
  // the daemon not ready (daemon/store_health.h).
  asyncops::install_sqlite_error_log();
  return asyncops::daemon_main(argc, argv);
}
