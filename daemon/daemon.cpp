#include "daemon/daemon.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "daemon/auth.h"
#include "daemon/change_hub.h"
#include "daemon/limits.h"
#include "daemon/dispatcher.h"
#include "daemon/gateway.h"
#include "daemon/group_commit.h"
#include "daemon/http_api.h"
#include "daemon/routes.h"
#include "daemon/store_health.h"
#include "daemon/metrics.h"
#include "daemon/retention.h"
#include "daemon/tracker.h"
#include "daemon/worker_registry.h"
#include "shared/clock.h"
#include "shared/config.h"
#include "shared/curve.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "shared/paths.h"

namespace asyncops {
namespace {

// Holds an exclusive lock on DATA_DIR/asyncopsd.pid for the daemon's life, so
// that two daemons never share one store. The file is removed at a clean
// stop, so finding it at start means the last daemon did not stop cleanly
// (killed, crashed, or it kept the file: see keep_file).
class PidLock {
 public:
  ~PidLock() {
    if (m_fd >= 0) {
      if (!m_keep) ::unlink(m_path.c_str());
      ::close(m_fd);
    }
  }
  std::string acquire(const std::string& path) {
    m_path = path;
    struct stat before {};
    m_found_stale = ::stat(path.c_str(), &before) == 0;
    m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (m_fd < 0) return "cannot open " + path;
    if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(m_fd);
      m_fd = -1;
      return "another asyncopsd is running on this data dir (" + path + " is locked)";
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(m_fd, 0) != 0 || ::write(m_fd, pid.data(), pid.size()) < 0) {
      return "cannot write " + path;
    }
    return "";
  }
  // The file was there before acquire(): the last stop was not clean.
  bool found_stale() const { return m_found_stale; }
  // Leaves the file at exit, so that the next start checks the store again.
  void keep_file() { m_keep = true; }

 private:
  std::string m_path;
  int m_fd = -1;
  bool m_found_stale = false;
  bool m_keep = false;
};

bool split_host_port(const std::string& s, std::string* host, int* port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  *host = s.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  try {
    size_t used = 0;
    *port = std::stoi(s.substr(colon + 1), &used);
    return used == s.size() - colon - 1 && *port >= 0 && *port <= 65535;
  } catch (const std::exception&) {
    return false;
  }
}

bool write_file_atomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << content;
    if (!out) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

Result<std::map<std::string, std::string>> resolve_dispatch(const std::vector<std::string>& values,
                                                            const std::vector<std::string>& services,
                                                            const std::string& data_dir) {
  std::map<std::string, std::string> out;
  std::string fallback;  // a template for services not named
  for (const std::string& v : values) {
    auto eq = v.find('=');
    auto scheme = v.find("://");
    if (eq != std::string::npos && (scheme == std::string::npos || eq < scheme)) {
      std::string service = v.substr(0, eq);
      if (std::find(services.begin(), services.end(), service) == services.end()) {
        return Error{"--dispatch " + v + ": no route uses service '" + service + "'"};
      }
      out[service] = v.substr(eq + 1);
    } else {
      fallback = v;
    }
  }
  for (const std::string& s : services) {
    if (out.count(s)) continue;
    if (fallback.empty()) {
      out[s] = default_commands_endpoint(data_dir, s);
    } else if (fallback.find("{service}") != std::string::npos) {
      std::string e = fallback;
      e.replace(e.find("{service}"), 9, s);
      out[s] = e;
    } else if (services.size() == 1) {
      out[s] = fallback;
    } else {
      return Error{"--dispatch " + fallback + ": with several services, use SERVICE=ENDPOINT or {service}"};
    }
  }
  return out;
}

int run_daemon(const DaemonConfig& cfg) {
  // Every HTTP connection (each open SSE stream) is a descriptor, and libzmq
  // aborts the process when it cannot get one: take all the system allows.
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  LogLevel level = LogLevel::info;
  parse_log_level(cfg.log_level, &level);
  log_configure("asyncopsd", cfg.log_format == "json" ? LogFormat::json : LogFormat::text, level);

  if (auto err = make_dirs(cfg.data_dir, 0700); !err.empty()) {
    log_error(err);
    return 1;
  }
  PidLock pid_lock;
  if (auto err = pid_lock.acquire(cfg.data_dir + "/asyncopsd.pid"); !err.empty()) {
    log_error(err);
    return 1;
  }
  auto routes = cfg.routes_file.empty() ? RouteTable::load_json(RouteTable::default_json())
                                        : RouteTable::load_file(cfg.routes_file);
  if (!routes) {
    log_error(routes.error());
    return 1;
  }
  auto endpoints = resolve_dispatch(cfg.dispatch, routes->services(), cfg.data_dir);
  if (!endpoints) {
    log_error(endpoints.error());
    return 1;
  }
  std::string host;
  int port = 0;
  if (!split_host_port(cfg.listen, &host, &port)) {
    log_error("--listen " + cfg.listen + ": expected HOST:PORT");
    return 1;
  }

  // Access (issue 7): without tokens, loopback only; a public bind needs tokens.
  TokenStore tokens(cfg.access.tokens_file.empty() ? cfg.data_dir + "/tokens" : cfg.access.tokens_file);
  if (!tokens.configured() && !is_loopback_host(host)) {
    log_error("refusing --listen " + cfg.listen + ": no API tokens are configured (add one with `asyncops token add`, "
              "or listen on 127.0.0.1)");
    return 1;
  }
  double rate = 0;
  if (!cfg.access.rate_limit.empty() && !parse_rate(cfg.access.rate_limit, &rate)) {
    log_error("--rate-limit " + cfg.access.rate_limit + ": expected N/s");
    return 1;
  }
  RateLimiter limiter(rate);

  std::string store_path = cfg.data_dir + "/asyncops.db";
  // After an unclean stop, the store is checked before it is served: a
  // damaged file would otherwise be served as healthy until a read or
  // write happens to touch a damaged page.
  struct stat store_stat {};
  bool store_exists = ::stat(store_path.c_str(), &store_stat) == 0;
  // A store that fails the check is refused with one line, and the pid file
  // stays, so that the next start checks it again.
  auto refuse = [&](const std::string& complaint) {
    pid_lock.keep_file();
    log_error(corrupt_store_advice(store_path, complaint));
    return k_exit_store_corrupt;
  };
  // An error opening or reading the store is damage if the check says so.
  auto startup_error = [&](const std::string& error) {
    if (store_exists) {
      if (auto check = check_store(store_path); !check) return refuse(check.error());
    }
    log_error(error);
    return 1;
  };
  if (store_exists && pid_lock.found_stale()) {
    auto started = std::chrono::steady_clock::now();
    auto check = check_store(store_path);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    if (!check) return refuse(check.error());
    log_info("store checked after an unclean stop (PRAGMA quick_check): ok",
             {{"ms", std::to_string(ms.count())}, {"bytes", std::to_string(store_stat.st_size)}});
  }
  auto writer = StoreWriter::open(store_path, cfg.sync);
  // A file damaged where the schema lives fails to open at all.
  if (!writer) return startup_error(writer.error());
  // Everything accepted but not finished before the last stop is sent again;
  // workers deduplicate by request id.
  // One that may have reached a worker before the stop counts as a
  // redelivery (attempt+1); one out of attempts fails at once.
  int64_t latest_seq = 0;
  std::vector<Command> recovered;
  std::vector<std::pair<std::string, int>> exhausted;
  try {
    latest_seq = writer.value()->latest_history_seq();
    for (int64_t after = 0;;) {
      auto batch = writer.value()->unfinished(10000, after);
      if (batch.empty()) break;
      for (const auto& op : batch) {
        Command c = command_for(op);
        c.cancel = op.cancel_requested;
        if (op.attempt >= 1) c.attempt = op.attempt + 1;
        if (c.attempt > cfg.dispatch_options.max_attempts) {
          exhausted.emplace_back(op.id, op.attempt);
        } else {
          recovered.push_back(std::move(c));
        }
      }
      after = batch.back().seq;
    }
  } catch (const std::exception& e) {
    // Damage the check did not run for (the last stop was clean) or missed.
    return startup_error(std::string("cannot read store ") + store_path + ": " + e.what());
  }
  // From here on, corruption met by any connection makes the daemon not
  // ready (and is logged once, loudly); so do failing commits.
  StoreHealth health;
  report_sqlite_errors_to(&health);
  struct StopReporting {
    ~StopReporting() { report_sqlite_errors_to(nullptr); }
  } stop_reporting;

  // Signals are taken by sigwait() in this thread alone.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  zmq::context_t ctx(1);
  // CURVE (issue 7): the ZAP handler must be bound before any CURVE socket.
  std::string curve_secret;
  std::unique_ptr<ZapHandler> zap;
  AllowedKeys key_services;
  if (!cfg.access.curve_secret_key_file.empty()) {
    auto secret = read_curve_key(cfg.access.curve_secret_key_file, "secret");
    auto allowed = cfg.access.curve_allowed_keys.empty() ? Result<AllowedKeys>(AllowedKeys{})
                                                         : read_allowed_keys(cfg.access.curve_allowed_keys);
    if (!curve_available()) {
      log_error("--curve-secret-key-file: this libzmq has no CURVE support");
      return 1;
    }
    if (!secret || !allowed) {
      log_error(!secret ? secret.error() : allowed.error());
      return 1;
    }
    curve_secret = secret.value();
    key_services = allowed.value();
    zap = std::make_unique<ZapHandler>(ctx, allowed.value());
    if (auto r = zap->start(); !r) {
      log_error(r.error());
      return 1;
    }
    log_info("workers must authenticate with CURVE",
             {{"public_key", curve_public_of(curve_secret).value()},
              {"allowed_keys", std::to_string(allowed.value().size())}});
  }
  ChangeHub hub;
  hub.set_floor(latest_seq);
  Tracker* tracker_ptr = nullptr;
  GroupCommitter* committer_ptr = nullptr;  // set below, before any thread starts
  auto fail_exhausted = [&committer_ptr](const std::string& id, int attempts, bool at_restart) {
    Event e;
    e.request_id = id;
    e.state = OpState::failed;
    e.type = "worker_timeout";
    e.code = "worker_timeout";
    e.message = at_restart ? "no worker finished it: all " + std::to_string(attempts) +
                                 " attempts were used before the daemon restarted"
                           : "no worker finished it: " + std::to_string(attempts) +
                                 " attempts each ran out of their lease without progress";
    e.worker = "asyncopsd";
    e.attempt = attempts;
    committer_ptr->submit_event(std::move(e));
  };
  std::string control = cfg.control_endpoint.empty() ? default_control_endpoint(cfg.data_dir) : cfg.control_endpoint;
  Dispatcher dispatcher(ctx, endpoints.value(), control, cfg.dispatch_options,
                        {[&committer_ptr](std::vector<std::pair<std::string, int>> sent) {
                           committer_ptr->submit_dispatched(std::move(sent));
                         },
                         [&fail_exhausted](const std::string& id, int attempts) { fail_exhausted(id, attempts, false); }});
  std::vector<std::string> commands;
  for (const Route& r : routes->routes()) commands.push_back(r.command);
  Metrics metrics(commands);
  std::atomic<bool> ready{false};
  StoreWriter* writer_raw = writer.value().get();  // for the Checkpointer's WAL restarts; the committer owns it
  GroupCommitter committer(std::move(writer.value()),
                           {[&hub, &dispatcher, &metrics](const std::vector<Change>& c) {
                              // Metrics first: a client woken by the hub may read
                              // /metrics at once and must see its operation counted.
                              for (const Change& ch : c) {
                                if (is_terminal(ch.op.state) && ch.kind != "superseded" && ch.kind != "late_outcome") {  // counted once
                                  metrics.finished(ch.op.name, to_string(ch.op.state),
                                                   static_cast<double>(ch.op.updated_at - ch.op.created_at));
                                }
                              }
                              hub.publish(c);
                              dispatcher.observe(c);
                            },
                            [&dispatcher](std::vector<Command> c) { dispatcher.enqueue(std::move(c)); },
                            [&health](const std::exception* failure) { health.after_commit(failure); }});
  committer_ptr = &committer;
  WorkerRegistry registry(cfg.worker_timeout);
  Pruner pruner(committer, cfg.retention, 500, cfg.prune_interval);
  std::string events = cfg.events_endpoint.empty() ? default_events_endpoint(cfg.data_dir)
                                                   : cfg.events_endpoint;
  Tracker tracker(ctx, events, committer, [&registry, &dispatcher](const Heartbeat& hb) {
    registry.update(hb);
    dispatcher.heartbeat(hb);
  });
  tracker.set_key_services(key_services);
  if (!curve_secret.empty()) {
    auto setup = [curve_secret](zmq::socket_t& s) { make_curve_server(s, curve_secret); };
    dispatcher.socket_setup = setup;
    tracker.socket_setup = setup;
  }
  if (auto r = dispatcher.bind(); !r) {
    log_error(r.error());
    return 1;
  }
  tracker_ptr = &tracker;
  if (auto r = tracker.bind(); !r) {
    log_error(r.error());
    return 1;
  }
  ReaderPool readers(store_path);
  Checkpointer checkpointer(store_path, std::chrono::seconds(1), [writer_raw] { writer_raw->want_wal_restart(); });
  GatewayOptions gopts;
  gopts.max_body_bytes = cfg.max_body_bytes;
  gopts.max_wait_seconds = cfg.max_wait_seconds;
  gopts.stream.heartbeat = std::chrono::milliseconds(cfg.sse_heartbeat_ms);
  gopts.cors_origins = cfg.cors_origins;
  gopts.max_backlog = cfg.max_backlog;
  gopts.max_header_bytes = cfg.access.max_header_bytes;
  gopts.max_url_bytes = cfg.access.max_url_bytes;
  gopts.max_fields = cfg.access.max_fields;
  gopts.max_string_bytes = cfg.access.max_string_bytes;
  GatewayServices services;
  services.cancel = [&dispatcher](const std::string& id) {
    return dispatcher.cancel(id) == Dispatcher::CancelOutcome::removed;
  };
  services.workers = [&registry] { return registry.live(); };
  services.not_ready = [&ready, &health, &committer]() -> std::string {
    return ready.load() ? store_not_ready(health, committer) : "starting or stopping";
  };
  services.accepted = [&metrics](const std::string& command, double ms) { metrics.accepted(command, ms); };
  services.authenticate = [&tokens](const std::string& authorization) { return tokens.check(authorization); };
  if (limiter.enabled()) services.rate_limit = [&limiter](const std::string& p) { return limiter.take(p); };
  services.metrics = [&] {
    const auto& c = committer.counters();
    std::string m;
    auto metric = [&m](const char* name, const char* type, const char* help, double v) {
      m += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
           std::to_string(static_cast<int64_t>(v)) + "\n";
    };
    metric("asyncops_operations_accepted_total", "counter", "Operations accepted (202).", c.accepted.load());
    metric("asyncops_backlog", "gauge", "Operations not yet terminal.", c.unfinished.load());
    metric("asyncops_dispatch_waiting", "gauge", "Commands waiting for a worker or a redelivery.", dispatcher.waiting());
    metric("asyncops_in_flight", "gauge", "Commands with a worker, under lease.", dispatcher.in_flight());
    metric("asyncops_commands_sent_total", "counter", "Commands handed to workers.", dispatcher.sent());
    metric("asyncops_redeliveries_total", "counter", "Commands sent again after a lease ran out.", dispatcher.redelivered());
    metric("asyncops_claims_granted_total", "counter", "Claimed commands a worker may start (the attempt held its lease).", dispatcher.claims_granted());
    metric("asyncops_claims_refused_total", "counter", "Claimed commands refused: that attempt had lost its lease.", dispatcher.claims_refused());
    metric("asyncops_worker_connections", "gauge", "Worker connections with credit on the commands sockets.", dispatcher.worker_connections());
    metric("asyncops_worker_connections_lost_total", "counter", "Worker connections forgotten: gone or silent.", dispatcher.connections_lost());
    metric("asyncops_handshakes_failed_total", "counter", "Worker handshakes refused on the commands sockets (e.g. a protocol-1 worker).", dispatcher.handshakes_failed());
    metric("asyncops_commands_channel_refused_total", "counter", "Undecodable messages on the commands sockets.", dispatcher.bad_messages());
    metric("asyncops_events_late_total", "counter", "Outcomes from an attempt that had lost its lease (logged, in the history).", c.events_late.load());
    metric("asyncops_events_applied_total", "counter", "Worker events that changed an operation.", c.events_applied.load());
    metric("asyncops_events_unknown_total", "counter", "Worker events for no known operation.", c.events_unknown.load());
    metric("asyncops_events_rejected_total", "counter", "Worker events refused: not allowed for their operation.", c.events_rejected.load());
    metric("asyncops_events_ignored_total", "counter", "Worker events that changed nothing (late or duplicate).", c.events_ignored.load());
    metric("asyncops_bad_frames_total", "counter", "Undecodable messages on the events socket.", tracker_ptr ? tracker_ptr->bad_frames() : 0);
    metric("asyncops_store_commits_total", "counter", "Store transactions (group commits).", c.commits.load());
    metric("asyncops_store_commit_failures_total", "counter", "Store transactions that failed.", c.commit_failures.load());
    metric("asyncops_workers_live", "gauge", "Workers with a recent heartbeat.", registry.live_count());
    metric("asyncops_workers_evicted_total", "counter", "Workers forgotten to keep the registry bounded.", registry.evicted());
    if (tracker_ptr) m += tracker_ptr->render_refused();
    if (zap) metric("asyncops_curve_rejected_total", "counter", "Worker connections refused by CURVE/ZAP.", zap->rejected());
    metric("asyncops_operations_pruned_total", "counter", "Operations forgotten after the retention period.", pruner.pruned());
    return m + metrics.render();
  };
  Gateway gateway(std::move(routes.value()), committer, readers, hub, gopts, services);
  HttpOptions hopts;
  hopts.host = host;
  hopts.port = port;
  hopts.limits.max_body_bytes = cfg.max_body_bytes;
  hopts.limits.max_header_bytes = cfg.access.max_header_bytes;
  hopts.limits.max_url_bytes = cfg.access.max_url_bytes;
  hopts.io_threads = cfg.io_threads;
  hopts.max_connections = cfg.max_connections;
  hopts.header_timeout = cfg.header_timeout;
  hopts.body_timeout = cfg.body_timeout;
  hopts.idle_timeout = cfg.idle_timeout;
  hopts.ws_max_queue = cfg.ws_max_queue;
  hopts.ws_ping_interval = cfg.ws_ping_interval;
  hopts.tls_cert = cfg.access.tls_cert;
  hopts.tls_key = cfg.access.tls_key;
  HttpApi http(gateway, hopts);
  auto bound = http.bind();
  if (!bound) {
    log_error(bound.error());
    return 1;
  }

  committer.start();
  dispatcher.start();
  tracker.start();
  pruner.start();
  checkpointer.start();
  if (!recovered.empty()) {
    log_info("redispatching unfinished operations", {{"count", std::to_string(recovered.size())}});
    dispatcher.enqueue(std::move(recovered));
  }
  for (const auto& [id, attempts] : exhausted) fail_exhausted(id, attempts, true);
  http.start();

  std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string url = std::string(hopts.tls_cert.empty() ? "http" : "https") + "://" + url_host + ":" + std::to_string(bound.value());
  write_file_atomically(url_file(cfg.data_dir), url + "\n");
  LogFields fields = {{"url", url}, {"data_dir", cfg.data_dir}, {"events", events}, {"control", control}};
  for (const auto& [s, e] : endpoints.value()) fields.push_back({"commands." + s, e});
  fields.push_back({"tokens", tokens.configured() ? tokens.path() : "none (loopback clients only)"});
  if (limiter.enabled()) fields.push_back({"rate_limit", cfg.access.rate_limit});
  log_info("ready", fields);
  ready = true;
  std::cout << "asyncopsd ready: " << url << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  log_info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  ready = false;
  ::unlink(url_file(cfg.data_dir).c_str());
  hub.shutdown();  // wakes waiting requests so the server can stop
  http.stop();
  pruner.stop();
  tracker.stop();
  dispatcher.stop();
  committer.stop();  // applies what the tracker and dispatcher handed over
  checkpointer.stop();
  if (health.is_corrupt()) pid_lock.keep_file();  // the next start checks the store
  log_info("stopped");
  return 0;
}

int daemon_main(int argc, char** argv) {
  CLI::App app{"asyncopsd: the asyncops daemon (HTTP API, dispatcher, operation tracker, store)"};
  app.set_version_flag("--version", std::string("asyncopsd ") + "0.1.0");
  DaemonConfig cfg;
  cfg.data_dir = default_data_dir();
  std::string sync = "normal";
  app.add_option("--data-dir", cfg.data_dir, "Directory for the store, ipc sockets and pid file")
      ->envname("ASYNCOPS_DATA_DIR");
  app.add_option("--listen", cfg.listen, "HTTP address, HOST:PORT (port 0: any free port)")
      ->envname("ASYNCOPS_LISTEN");
  app.add_option("--events", cfg.events_endpoint,
                 "ZeroMQ endpoint the tracker's SUB socket binds (default ipc://DATA_DIR/events.ipc)")
      ->envname("ASYNCOPS_EVENTS");
  app.add_option("--dispatch", cfg.dispatch,
                 "ZeroMQ endpoint a service's ROUTER (commands) socket binds: [SERVICE=]ENDPOINT; may repeat; "
                 "{service} expands (default ipc://DATA_DIR/commands.{service}.ipc)");
  app.add_option("--routes", cfg.routes_file, "Route table JSON file (default: built in)")
      ->envname("ASYNCOPS_ROUTES")
      ->check(CLI::ExistingFile);
  app.add_option("--sync", sync, "Durability: normal (survives a crash) or full (survives power loss)")
      ->envname("ASYNCOPS_SYNC")
      ->check(CLI::IsMember({"normal", "full"}));
  app.add_option("--max-body", cfg.max_body_bytes, "Largest request body in bytes")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20));
  app.add_option("--max-wait", cfg.max_wait_seconds, "Cap in seconds on ?wait=N and Prefer: wait=N")
      ->check(CLI::Range(0, 3600));
  app.add_option("--max-http-threads", cfg.max_http_threads,
                 "Ignored since the event-loop front end (kept so that old configs load); see --io-threads")
      ->check(CLI::Range(size_t{0}, size_t{65536}));
  app.add_option("--io-threads", cfg.io_threads, "Threads serving HTTP and WebSocket connections (0: one per core)")
      ->envname("ASYNCOPS_IO_THREADS")
      ->check(CLI::Range(size_t{0}, size_t{256}));
  app.add_option("--max-connections", cfg.max_connections,
                 "Open client connections at most; at the limit the oldest idle one is closed for a new one")
      ->envname("ASYNCOPS_MAX_CONNECTIONS")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--ws-max-queue", cfg.ws_max_queue,
                 "WebSocket frames queued for one client before it is closed as too slow (code 4001)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--sse-heartbeat-ms", cfg.sse_heartbeat_ms, "Interval of SSE keep-alive comments")
      ->check(CLI::Range(100, 600000));
  app.add_option("--cors-origin", cfg.cors_origins,
                 "An origin allowed to call from a browser (CORS); may repeat; * for any (default: same origin only)")
      ->envname("ASYNCOPS_CORS_ORIGIN");
  std::string lease = "30s", backoff = "1s", retention = "7d", worker_timeout = "5s", prune_interval = "60s";
  std::string header_timeout = "10s", body_timeout = "10s", idle_timeout = "5s", ws_ping = "15s";
  auto duration_check = CLI::Validator(
      [](std::string& v) {
        std::chrono::milliseconds d;
        return parse_duration(v, &d) ? std::string() : "'" + v + "' is not a duration like 250ms, 30s, 5m, 24h or 7d";
      },
      "DURATION");
  app.add_option("--header-timeout", header_timeout, "Deadline for a whole request head (request line and fields)")
      ->check(duration_check);
  app.add_option("--body-timeout", body_timeout, "Deadline for each step of progress while a request body arrives")
      ->check(duration_check);
  app.add_option("--idle-timeout", idle_timeout, "How long a kept-alive connection may wait for its next request")
      ->check(duration_check);
  app.add_option("--ws-ping-interval", ws_ping, "How often an idle WebSocket is pinged; two intervals without an answer close it")
      ->check(duration_check);
  app.add_option("--control", cfg.control_endpoint,
                 "ZeroMQ endpoint of the PUB socket that tells workers of cancels (default ipc://DATA_DIR/control.ipc)")
      ->envname("ASYNCOPS_CONTROL");
  app.add_option("--lease", lease, "How long a worker may hold a command without progress before it is redelivered")
      ->envname("ASYNCOPS_LEASE")
      ->check(duration_check);
  app.add_option("--max-attempts", cfg.dispatch_options.max_attempts, "Deliveries before an operation fails worker_timeout")
      ->envname("ASYNCOPS_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100));
  app.add_option("--backoff", backoff, "Wait before the first redelivery; doubles each time, up to 60s")
      ->check(duration_check);
  app.add_option("--max-in-flight", cfg.dispatch_options.max_in_flight, "Commands with workers at once, per service")
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  app.add_option("--max-backlog", cfg.max_backlog, "Unfinished operations before commands get 503")
      ->envname("ASYNCOPS_MAX_BACKLOG")
      ->check(CLI::Range(int64_t{1}, int64_t{1000000000}));
  app.add_option("--retention", retention, "How long finished operations, their history and idempotency keys are kept")
      ->envname("ASYNCOPS_RETENTION")
      ->check(duration_check);
  app.add_option("--worker-timeout", worker_timeout, "A worker silent this long is no longer live")
      ->check(duration_check);
  std::string zmq_heartbeat = "500ms", zmq_heartbeat_timeout = "1500ms", tcp_keepalive = "10s";
  app.add_option("--zmq-heartbeat", zmq_heartbeat,
                 "ZeroMQ heartbeat interval on tcp:// sockets, to notice a cut link (0: off)")
      ->envname("ASYNCOPS_ZMQ_HEARTBEAT")
      ->check(duration_check);
  app.add_option("--zmq-heartbeat-timeout", zmq_heartbeat_timeout,
                 "A tcp:// connection that is silent this long is closed, and its commands redelivered")
      ->envname("ASYNCOPS_ZMQ_HEARTBEAT_TIMEOUT")
      ->check(duration_check);
  app.add_option("--tcp-keepalive", tcp_keepalive, "TCP keepalive idle time on tcp:// sockets (0: off)")
      ->envname("ASYNCOPS_TCP_KEEPALIVE")
      ->check(duration_check);
  app.add_option("--prune-interval", prune_interval, "How often expired operations are looked for")
      ->check(duration_check);
  app.add_option("--log-format", cfg.log_format, "text or json")
      ->envname("ASYNCOPS_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", cfg.log_level, "debug, info, warn or error")
      ->envname("ASYNCOPS_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  add_access_options(app, cfg.access);
  std::string config_path;
  bool print_config = false;
  app.add_option("--config", config_path,
                 "Configuration file, [daemon] section (default $ASYNCOPS_CONFIG, "
                 "$XDG_CONFIG_HOME/asyncops/asyncops.conf or ~/.config/asyncops/asyncops.conf)");
  app.add_flag("--print-config", print_config,
               "Print the effective settings as JSON, each with its source (default, file, env or flag), and exit");
  app.footer(
      "Precedence: flag > ASYNCOPS_* environment > config file > default. See asyncopsd(8), asyncops.conf(5).\n"
      "Examples:\n"
      "  asyncopsd --listen 0.0.0.0:8080 --data-dir /var/lib/asyncops\n"
      "  ASYNCOPS_SYNC=full asyncopsd --log-format json\n"
      "  asyncopsd --config /etc/asyncops/asyncops.conf --print-config");
  for (CLI::Option* opt : app.get_options()) opt->capture_default_str();
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // --help/--version exit 0; every usage error is the documented 2
  }
  // The config file: its [daemon] section fills what no flag or env set.
  bool explicit_config = !config_path.empty() || std::getenv("ASYNCOPS_CONFIG") != nullptr;
  if (config_path.empty()) config_path = default_config_path();
  auto file = load_config(config_path, explicit_config);
  if (!file) {
    std::cerr << "asyncopsd: " << file.error() << std::endl;
    return 1;
  }
  auto settings = apply_config_section(app, file.value(), "daemon", args, {"config", "print-config"});
  if (!settings) {
    std::cerr << "asyncopsd: " << settings.error() << std::endl;
    return 1;
  }
  if (print_config) {
    nlohmann::json j = {{"config_file", config_path}, {"config_file_found", file->found}};
    nlohmann::json items = nlohmann::json::array();
    for (const auto& s : settings.value()) items.push_back({{"key", s.key}, {"value", s.value}, {"source", s.source}});
    j["settings"] = items;
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  if (cfg.access.tls_cert.empty() != cfg.access.tls_key.empty()) {
    std::cerr << "asyncopsd: --tls-cert and --tls-key go together" << std::endl;
    return 2;
  }
  parse_sync_mode(sync, &cfg.sync);
  parse_duration(lease, &cfg.dispatch_options.lease);
  parse_duration(backoff, &cfg.dispatch_options.backoff);
  parse_duration(retention, &cfg.retention);
  parse_duration(worker_timeout, &cfg.worker_timeout);
  {
    std::chrono::milliseconds ivl, timeout, keepalive;
    parse_duration(zmq_heartbeat, &ivl);
    parse_duration(zmq_heartbeat_timeout, &timeout);
    parse_duration(tcp_keepalive, &keepalive);
    LivenessOptions& l = cfg.dispatch_options.liveness;
    l.heartbeat_ms = static_cast<int>(std::min<int64_t>(ivl.count(), 3600000));
    l.heartbeat_timeout_ms = static_cast<int>(std::min<int64_t>(timeout.count(), 3600000));
    l.tcp_keepalive_s = static_cast<int>(std::min<int64_t>((keepalive.count() + 999) / 1000, 86400));
    if (auto why = check_liveness(l); !why.empty()) {
      std::cerr << "asyncopsd: --zmq-heartbeat/--zmq-heartbeat-timeout/--tcp-keepalive: " << why << std::endl;
      return 2;
    }
  }
  parse_duration(prune_interval, &cfg.prune_interval);
  parse_duration(header_timeout, &cfg.header_timeout);
  parse_duration(body_timeout, &cfg.body_timeout);
  parse_duration(idle_timeout, &cfg.idle_timeout);
  parse_duration(ws_ping, &cfg.ws_ping_interval);
  return run_daemon(cfg);
}

}  // namespace asyncops
