#pragma once
#include <map>
#include <string>
#include <vector>

#include "daemon/access.h"
#include "daemon/dispatcher.h"
#include "store/store.h"

namespace asyncops {

struct DaemonConfig {
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  std::string events_endpoint;                 // default: ipc inside the data dir
  std::vector<std::string> dispatch;           // "[SERVICE=]ENDPOINT"; {service} is expanded
  std::string routes_file;                     // empty: the embedded default
  SyncMode sync = SyncMode::normal;
  size_t max_body_bytes = 1 << 20;
  int max_wait_seconds = 60;
  size_t max_http_threads = 0;  // no longer used (issue 11): accepted so that old configs still load
  // The HTTP/WebSocket front end (daemon/http_api.h).
  size_t io_threads = 0;  // 0: one per core
  size_t max_connections = 20000;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{10000};
  std::chrono::milliseconds idle_timeout{5000};
  size_t ws_max_queue = 1024;
  std::chrono::milliseconds ws_ping_interval{15000};
  int sse_heartbeat_ms = 15000;
  std::string control_endpoint;  // default: ipc inside the data dir
  DispatchOptions dispatch_options;
  int64_t max_backlog = 50000;
  std::chrono::milliseconds retention{7LL * 86400 * 1000};
  std::chrono::milliseconds worker_timeout{5000};
  std::chrono::milliseconds prune_interval{60000};
  std::vector<std::string> cors_origins;
  std::string log_format = "text";
  std::string log_level = "info";
  AccessConfig access;  // tokens, limits, TLS, CURVE (daemon/access.h)
};

// Resolves service -> commands endpoint from the --dispatch values.
// Returns an error naming the bad value.
Result<std::map<std::string, std::string>> resolve_dispatch(
    const std::vector<std::string>& values, const std::vector<std::string>& services,
    const std::string& data_dir);

// The exit code of a daemon that refuses a store which failed its integrity
// check (PRAGMA quick_check, run at start after an unclean stop).
constexpr int k_exit_store_corrupt = 3;

// Runs the daemon until SIGINT or SIGTERM. Returns the process exit code:
// 0 after a clean stop, 1 for a startup error, 2 for bad usage,
// k_exit_store_corrupt.
int run_daemon(const DaemonConfig& config);

// main(): parses flags, then run_daemon().
int daemon_main(int argc, char** argv);

}  // namespace asyncops
