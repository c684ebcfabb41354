#pragma once
// The SQLite backend's part of the daemon's store readiness
// (daemon/store_health.h keeps the backend-neutral part): which SQLite
// failures mean a damaged file, SQLite's process-wide error log that
// reports them from any connection, and the integrity check run at start
// after an unclean stop.
#include <exception>
#include <optional>
#include <string>

#include "shared/result.h"
#include "store/corruption_listener.h"

namespace asyncops {

// True for SQLite's result codes (primary or extended) that mean the file
// is damaged: SQLITE_CORRUPT and SQLITE_NOTADB.
bool is_corruption_code(int sqlite_code);

// The extended result code when e is a SQLite error that means the file is
// damaged (is_corruption_code); nullopt for any other failure (a full
// disk, an I/O error, anything not from SQLite).
std::optional<int> corruption_code(const std::exception& e);

// Process-wide SQLite settings for the daemon: no memory statistics (whose
// mutex every allocation would take), and SQLite's error log
// (SQLITE_CONFIG_LOG) routed to the listener set by
// report_sqlite_errors_to(), so that corruption met by any connection, on
// any thread, is seen even where the exception is caught and turned into a
// 500. Must be called before the first connection opens; false when SQLite
// is already initialised.
bool install_sqlite_error_log();
// Thread-safe; null stops the routing. The listener must outlive its use.
void report_sqlite_errors_to(CorruptionListener* listener);

// PRAGMA quick_check on the store at path (which must exist): ok, or an
// error with SQLite's first complaint. Opens its own connection (it only
// reads); reads the whole file, so its cost grows with the store's size.
Status check_store(const std::string& path);

// The one line the daemon logs when it refuses a store that failed
// check_store, saying how to recover.
std::string corrupt_store_advice(const std::string& path, const std::string& detail);

}  // namespace asyncops
