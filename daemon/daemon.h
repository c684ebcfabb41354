#pragma once
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "daemon/access.h"
#include "daemon/auth.h"
#include "daemon/change_hub.h"
#include "daemon/dispatcher.h"
#include "daemon/gateway.h"
#include "daemon/group_commit.h"
#include "daemon/http_api.h"
#include "daemon/limits.h"
#include "daemon/metrics.h"
#include "daemon/retention.h"
#include "daemon/routes.h"
#include "daemon/store_health.h"
#include "daemon/tracker.h"
#include "daemon/worker_registry.h"
#include "shared/curve.h"
#include "store/sqlite_store.h"
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
  int stream_threads = -1;  // -1: one per core; 0: streams stay on the I/O threads
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

// What start-up prepared before any part of the daemon is built: each of
// these could fail, and has been checked (daemon.cpp, run_daemon).
struct DaemonInputs {
  explicit DaemonInputs(RouteTable table) : routes(std::move(table)) {}
  RouteTable routes;
  std::map<std::string, std::string> endpoints;  // service -> commands endpoint
  std::string host;                              // of --listen
  int port = 0;
  double rate = 0;                               // --rate-limit, per second; 0: none
  std::unique_ptr<TokenStore> tokens;
  std::string store_path;
  std::unique_ptr<StoreWriter> writer;  // open, its schema current
  int64_t latest_seq = 0;               // the store's newest history seq
  std::string curve_secret;             // "" without CURVE
  AllowedKeys curve_allowed;
};

// Work left unfinished by the last run, read from the store at start.
struct RecoveredWork {
  std::vector<Command> commands;                           // sent again
  std::vector<std::pair<std::string, int>> exhausted;      // (id, attempts): out of attempts
};

// The composition root: the daemon's parts, wired. Members are declared
// in dependency order (each uses only those above it), so they are built
// in that order and destroyed in the reverse; the one cycle (the
// dispatcher reports to the committer, which feeds the dispatcher) is
// closed by Dispatcher::set_hooks() in the constructor, before start().
//
// Threads (docs/ARCHITECTURE.md): start() starts them in dependency order
// and stop() stops them in the reverse, the committer last but the
// checkpointer, so that what the tracker and dispatcher handed over is
// applied.
class Daemon {
 public:
  Daemon(const DaemonConfig& config, DaemonInputs inputs);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Binds every socket and starts every thread, then sends the recovered
  // work and serves HTTP. Returns the bound HTTP port, or an error (then
  // nothing was started but what stop() stops).
  Result<int> start(RecoveredWork recovered);
  // Whether /readyz may answer ready (after start(); not while stopping).
  void set_ready(bool ready) { m_ready = ready; }
  // Stops serving and every thread, in order.
  void stop();

  bool tokens_configured() { return m_tokens->configured(); }
  const std::string& tokens_path() const { return m_tokens->path(); }
  bool rate_limited() const { return m_limiter.enabled(); }
  // Corruption was met: the pid file stays, so the next start checks.
  bool store_corrupt() const { return m_health.is_corrupt(); }

 private:
  GatewayServices gateway_services();
  DaemonCounters counters();

  std::unique_ptr<TokenStore> m_tokens;
  RateLimiter m_limiter;
  std::atomic<bool> m_ready{false};
  StoreHealth m_health;  // told of corruption by every connection while the daemon lives
  ChangeHub m_hub;
  Metrics m_metrics;
  zmq::context_t m_zmq{1};  // the one context; every socket is owned by one thread
  std::unique_ptr<ZapHandler> m_zap;  // with CURVE; started before any CURVE socket binds
  Dispatcher m_dispatcher;            // reports to m_committer: see the constructor
  GroupCommitter m_committer;         // publishes to m_hub, feeds m_dispatcher
  WorkerRegistry m_registry;
  Tracker m_tracker;
  Pruner m_pruner;
  ReaderPool m_readers;
  Checkpointer m_checkpointer;
  Gateway m_gateway;
  HttpApi m_http;
};

// Resolves service -> commands endpoint from the --dispatch values.
// Returns an error naming the bad value.
Result<std::map<std::string, std::string>> resolve_dispatch(
    const std::vector<std::string>& values, const std::vector<std::string>& services,
    const std::string& data_dir);

// The exit code of a daemon that refuses a store which failed its integrity
// check (PRAGMA quick_check, run at start after an unclean stop).
constexpr int k_exit_store_corrupt = 3;

// Prepares the inputs (pid lock, routes, store check, recovery), builds a
// Daemon, runs it until SIGINT or SIGTERM. Returns the process exit code:
// 0 after a clean stop, 1 for a startup error, 2 for bad usage,
// k_exit_store_corrupt.
int run_daemon(const DaemonConfig& config);

// main(): sets SQLite's process-wide options (before any connection
// opens), parses flags, then run_daemon().
int daemon_main(int argc, char** argv);

}  // namespace asyncops
