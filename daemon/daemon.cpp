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

#include "daemon/daemon_events.h"
#include "daemon/service_manager.h"
#include "shared/clock.h"
#include "shared/config.h"
#include "shared/curve.h"
#include "shared/duration.h"
#include "shared/log.h"
#include "shared/paths.h"
#include "shared/stop_signals.h"
#include "store/pid_lock.h"
#include "store/sqlite_health.h"
#include "store/sqlite_store.h"
#include "store/wal_batching.h"

namespace asyncops {
namespace {

struct HostPort {
  std::string host;  // without the brackets of an IPv6 literal
  int port = 0;
};

// "HOST:PORT", "[V6]:PORT"; an error saying what is expected otherwise.
Result<HostPort> split_host_port(const std::string& s) {
  const Error malformed{"expected HOST:PORT"};
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return malformed;
  HostPort hp;
  hp.host = s.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') hp.host = hp.host.substr(1, hp.host.size() - 2);
  try {
    size_t used = 0;
    hp.port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1) return malformed;
  } catch (const std::exception&) {
    return malformed;
  }
  if (hp.port < 0 || hp.port > 65535) return Error{"expected HOST:PORT with a port from 0 to 65535"};
  return hp;
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

std::vector<std::string> command_names(const RouteTable& routes) {
  std::vector<std::string> commands;
  for (const Route& r : routes.routes()) commands.push_back(r.command);
  return commands;
}

GatewayOptions gateway_options(const DaemonConfig& cfg) {
  GatewayOptions o;
  o.max_body_bytes = cfg.max_body_bytes;
  o.max_wait_seconds = cfg.max_wait_seconds;
  o.stream.heartbeat = std::chrono::milliseconds(cfg.sse_heartbeat_ms);
  o.cors_origins = cfg.cors_origins;
  o.max_backlog = cfg.max_backlog;
  o.max_header_bytes = cfg.access.max_header_bytes;
  o.max_url_bytes = cfg.access.max_url_bytes;
  o.max_fields = cfg.access.max_fields;
  o.max_string_bytes = cfg.access.max_string_bytes;
  return o;
}

HttpOptions http_options(const DaemonConfig& cfg, const std::string& host, int port) {
  HttpOptions o;
  o.host = host;
  o.port = port;
  o.limits.max_body_bytes = cfg.max_body_bytes;
  o.limits.max_header_bytes = cfg.access.max_header_bytes;
  o.limits.max_url_bytes = cfg.access.max_url_bytes;
  o.io_threads = cfg.io_threads;
  o.stream_threads = cfg.stream_threads;
  o.max_connections = cfg.max_connections;
  o.header_timeout = cfg.header_timeout;
  o.body_timeout = cfg.body_timeout;
  o.idle_timeout = cfg.idle_timeout;
  o.ws_max_queue = cfg.ws_max_queue;
  o.ws_ping_interval = cfg.ws_ping_interval;
  o.tls_cert = cfg.access.tls_cert;
  o.tls_key = cfg.access.tls_key;
  return o;
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

Daemon::Daemon(const DaemonConfig& config, DaemonInputs in)
    : m_tokens(std::move(in.tokens)),
      m_limiter(in.rate),
      m_metrics(command_names(in.routes)),
      m_zap(in.curve_secret.empty() ? nullptr : std::make_unique<ZapHandler>(m_zmq, in.curve_allowed)),
      m_dispatcher(m_zmq, in.endpoints,
                   config.control_endpoint.empty() ? default_control_endpoint(config.data_dir)
                                                   : config.control_endpoint,
                   config.dispatch_options),
      m_committer(std::move(in.writer),
                  {[this](const std::vector<Change>& changes) {
                     // Metrics before the hub (on_published): a client it
                     // wakes may read /metrics at once and must see its
                     // operation counted.
                     for (const Change& c : changes) {
                       if (ends_operation(c)) {  // counted once
                         m_metrics.finished(c.op.name, to_string(c.op.state),
                                            static_cast<double>(c.op.updated_at - c.op.created_at));
                       }
                     }
                     m_dispatcher.observe(changes);
                   },
                   [this](std::vector<Command> accepted) { m_dispatcher.enqueue(std::move(accepted)); },
                   [this](const std::exception* failure) { m_health.after_commit(failure); },
                   [this](std::vector<std::string> steps) {
                     // A saga's cancel names its forward step in flight: the
                     // dispatcher decides per step (daemon/cancel.h).
                     for (const std::string& id : steps) {
                       m_dispatcher.cancel(id, [id](Status stored) {
                         if (!stored) log_warn("a saga step's cancel was not stored", {{"id", id}, {"error", stored.error()}});
                       });
                     }
                   },
                   [this](std::vector<std::string> ids) { m_dispatcher.end_leases(std::move(ids)); },
                   [this](const std::vector<Change>& changes) { m_hub.publish(changes); }}),
      m_registry(config.worker_timeout),
      m_tracker(m_zmq, config.events_endpoint.empty() ? default_events_endpoint(config.data_dir) : config.events_endpoint,
                m_committer,
                [this](const Heartbeat& hb) {
                  m_registry.update(hb);
                  m_dispatcher.heartbeat(hb);
                }),
      m_pruner(m_committer, config.retention, 500, config.prune_interval),
      m_readers(in.store_path),
      m_checkpointer(in.store_path, std::chrono::seconds(1), [this] { m_committer.want_wal_restart(); }),
      m_gateway(std::move(in.routes), m_committer, m_readers, m_hub, gateway_options(config), gateway_services()),
      m_http(m_gateway, http_options(config, in.host, in.port)) {
  // From here on, corruption met by any connection makes the daemon not
  // ready (and is logged once, loudly); so do failing commits.
  report_sqlite_errors_to(&m_health);
  // An I/O thread commits its own accept, and the tracker its events, when
  // the writer is idle, except where a commit waits for an fsync
  // (group_commit.h).
  m_committer.lead_when_idle(config.sync != SyncMode::full);
  m_hub.set_floor(in.latest_seq);
  // The dispatcher reports what it did to the store.
  Dispatcher::Hooks reports;
  reports.on_sent = [this](std::vector<std::pair<std::string, int>> sent) {
    m_committer.submit_dispatched(std::move(sent));
  };
  reports.on_gave_up = [this](const std::string& id, int attempts) {
    // A saga's step settles and its compensation fails (the saga decides);
    // a plain operation fails worker_timeout.
    if (saga::parse_step_request_id(id)) return m_committer.submit_step_gave_up(id, attempts);
    m_committer.submit_event(worker_timeout(id, attempts, GaveUp::leases_ran_out));
  };
  reports.on_cancel = [this](CancelDecision decision, CancelDone done) {
    m_committer.apply_cancel(std::move(decision), std::move(done));
  };
  m_dispatcher.set_hooks(std::move(reports));
  m_tracker.set_key_services(in.curve_allowed);
  if (!in.curve_secret.empty()) {
    auto setup = [secret = in.curve_secret](zmq::socket_t& s) { make_curve_server(s, secret); };
    m_dispatcher.socket_setup = setup;
    m_tracker.socket_setup = setup;
  }
}

Daemon::~Daemon() {
  stop();
  report_sqlite_errors_to(nullptr);
}

GatewayServices Daemon::gateway_services() {
  GatewayServices s;
  s.cancel = [this](const std::string& id, CancelDone done) { m_dispatcher.cancel(id, std::move(done)); };
  s.workers = [this] { return m_registry.live(); };
  s.not_ready = [this]() -> std::string {
    return m_ready.load() ? store_not_ready(m_health, m_committer) : "starting or stopping";
  };
  s.accepted = [this](const std::string& command, double ms) { m_metrics.accepted(command, ms); };
  s.authenticate = [this](const std::string& authorization) { return m_tokens->check(authorization); };
  if (m_limiter.enabled()) s.rate_limit = [this](const std::string& p) { return m_limiter.take(p); };
  s.metrics = [this] { return render(counters()) + m_metrics.render(); };
  return s;
}

DaemonCounters Daemon::counters() {
  const auto& c = m_committer.counters();
  DaemonCounters d;
  d.accepted = c.accepted.load();
  d.backlog = c.unfinished.load();
  d.dispatch_waiting = m_dispatcher.waiting();
  d.in_flight = m_dispatcher.in_flight();
  d.commands_sent = m_dispatcher.sent();
  d.redeliveries = m_dispatcher.redelivered();
  d.claims_granted = m_dispatcher.claims_granted();
  d.claims_refused = m_dispatcher.claims_refused();
  d.worker_connections = m_dispatcher.worker_connections();
  d.worker_connections_lost = m_dispatcher.connections_lost();
  d.handshakes_failed = m_dispatcher.handshakes_failed();
  d.commands_channel_refused = m_dispatcher.bad_messages();
  d.events_late = c.events_late.load();
  d.events_applied = c.events_applied.load();
  d.events_unknown = c.events_unknown.load();
  d.events_rejected = c.events_rejected.load();
  d.events_ignored = c.events_ignored.load();
  d.bad_frames = m_tracker.bad_frames();
  d.commits = c.commits.load();
  d.commit_failures = c.commit_failures.load();
  d.workers_live = m_registry.live_count();
  d.workers_evicted = m_registry.evicted();
  for (int r = 0; r < k_refusal_count; ++r) {
    d.refused[0][r] = m_tracker.refused(k_kind_event, static_cast<Refusal>(r));
    d.refused[1][r] = m_tracker.refused(k_kind_heartbeat, static_cast<Refusal>(r));
  }
  if (m_zap) d.curve_rejected = m_zap->rejected();
  d.pruned = m_pruner.pruned();
  return d;
}

Result<int> Daemon::start(RecoveredWork recovered) {
  // CURVE (issue 7): the ZAP handler must be bound before any CURVE socket.
  if (m_zap) {
    if (auto r = m_zap->start(); !r) return Error{r.error()};
  }
  if (auto r = m_dispatcher.bind(); !r) return Error{r.error()};
  if (auto r = m_tracker.bind(); !r) return Error{r.error()};
  auto bound = m_http.bind();
  if (!bound) return Error{bound.error()};

  m_committer.start();
  m_dispatcher.start();
  // The recovered commands reach the dispatcher before the tracker starts:
  // an outcome a worker publishes as soon as it reconnects then finds its
  // command there, and ends it, instead of overtaking it.
  if (!recovered.commands.empty()) {
    log_info("redispatching unfinished operations", {{"count", std::to_string(recovered.commands.size())}});
    m_dispatcher.enqueue_recovered(std::move(recovered.commands));
  }
  m_tracker.start();
  m_pruner.start();
  m_checkpointer.start();
  for (const auto& [id, attempts] : recovered.exhausted) {
    m_committer.submit_event(worker_timeout(id, attempts, GaveUp::before_restart));
  }
  m_http.start();
  return bound.value();
}

void Daemon::stop() {
  m_ready = false;
  m_hub.shutdown();  // wakes waiting requests so the server can stop
  m_http.stop();
  m_pruner.stop();
  m_tracker.stop();
  m_dispatcher.stop();
  m_committer.stop();  // applies what the tracker and dispatcher handed over
  m_checkpointer.stop();
}

int run_daemon(const DaemonConfig& cfg) {
  // Every HTTP connection (each open SSE stream) is a descriptor, and libzmq
  // aborts the process when it cannot get one: take all the system allows.
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  auto level = parse_log_level(cfg.log_level);  // the option's check refused any other text
  log_configure("asyncopsd", cfg.log_format == "json" ? LogFormat::json : LogFormat::text,
                level ? level.value() : LogLevel::info);

  if (auto made = make_dirs(cfg.data_dir, 0700); !made) {
    log_error(made.error());
    return 1;
  }
  PidLock pid_lock;
  if (auto locked = pid_lock.acquire(cfg.data_dir + "/asyncopsd.pid"); !locked) {
    log_error(locked.error());
    return 1;
  }
  auto routes = cfg.routes_file.empty() ? RouteTable::load_json(RouteTable::default_json())
                                        : RouteTable::load_file(cfg.routes_file);
  if (!routes) {
    log_error(routes.error());
    return 1;
  }
  DaemonInputs in(std::move(routes.value()));
  auto endpoints = resolve_dispatch(cfg.dispatch, in.routes.services(), cfg.data_dir);
  if (!endpoints) {
    log_error(endpoints.error());
    return 1;
  }
  in.endpoints = std::move(endpoints.value());
  auto listen = split_host_port(cfg.listen);
  if (!listen) {
    log_error("--listen " + cfg.listen + ": " + listen.error());
    return 1;
  }
  in.host = listen->host;
  in.port = listen->port;

  // Access (issue 7): without tokens, loopback only; a public bind needs tokens.
  in.tokens = std::make_unique<TokenStore>(cfg.access.tokens_file.empty() ? cfg.data_dir + "/tokens"
                                                                           : cfg.access.tokens_file);
  if (!in.tokens->configured() && !is_loopback_host(in.host)) {
    log_error("refusing --listen " + cfg.listen + ": no API tokens are configured (add one with `asyncops token add`, "
              "or listen on 127.0.0.1)");
    return 1;
  }
  if (!cfg.access.rate_limit.empty()) {
    auto rate = parse_rate(cfg.access.rate_limit);
    if (!rate) {
      log_error("--rate-limit " + cfg.access.rate_limit + ": expected N/s (" + rate.error() + ")");
      return 1;
    }
    in.rate = rate.value();
  }

  in.store_path = cfg.data_dir + "/asyncops.db";
  const std::string& store_path = in.store_path;
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
  auto writer = SqliteStoreWriter::open(store_path, cfg.sync);
  // A file damaged where the schema lives fails to open at all.
  if (!writer) return startup_error(writer.error());
  in.writer = std::move(writer.value());
  // Everything accepted but not finished before the last stop is sent again;
  // workers deduplicate by request id.
  // One that may have reached a worker before the stop counts as a
  // redelivery (attempt+1); one out of attempts fails at once.
  RecoveredWork recovered;
  try {
    std::vector<std::string> sagas;
    for (int64_t after = 0;;) {
      auto batch = in.writer->unfinished(10000, after);
      if (batch.empty()) break;
      for (const auto& op : batch) {
        if (op.step_count > 0) {  // a saga sends its steps, never its own id
          sagas.push_back(op.id);
          continue;
        }
        Command c = command_for(op);
        c.cancel = op.cancel_requested;
        if (op.attempt >= 1) c.attempt = op.attempt + 1;
        if (c.attempt > cfg.dispatch_options.max_attempts) {
          recovered.exhausted.emplace_back(op.id, op.attempt);
        } else {
          recovered.commands.push_back(std::move(c));
        }
      }
      after = batch.back().seq;
    }
    // Each unfinished saga from its stored state alone (saga::resume): what
    // was in flight is sent again, and what ran out of attempts is given up
    // on, in one start-up transaction (docs/design/sagas.md §4).
    if (!sagas.empty()) {
      int64_t now = now_ms();
      in.writer->begin();
      for (const std::string& id : sagas) {
        auto resumed = in.writer->resume_saga(id, cfg.dispatch_options.max_attempts, now);
        for (Command& c : resumed.commands) recovered.commands.push_back(std::move(c));
      }
      in.writer->commit();
      log_info("resuming unfinished sagas", {{"count", std::to_string(sagas.size())}});
    }
    in.latest_seq = in.writer->latest_history_seq();
  } catch (const std::exception& e) {
    // Damage the check did not run for (the last stop was clean) or missed.
    return startup_error(std::string("cannot read store ") + store_path + ": " + e.what());
  }

  // A saga in flight keeps the services its plan named when it was
  // accepted, even if the routes file no longer names them: each gets its
  // commands endpoint, or its sagas would be stranded.
  {
    std::vector<std::string> services = in.routes.services();
    size_t named = services.size();
    for (const Command& c : recovered.commands) {
      bool saga = !c.saga.operation.empty();  // a plain operation keeps today's "no commands endpoint" log
      if (saga && std::find(services.begin(), services.end(), c.service) == services.end()) services.push_back(c.service);
    }
    if (services.size() > named) {
      auto more = resolve_dispatch(cfg.dispatch, services, cfg.data_dir);
      if (!more) {
        log_error("unfinished sagas name services the routes no longer do: " + more.error());
        return 1;
      }
      in.endpoints = std::move(more.value());
    }
  }

  // Signals are taken by sigwait() in this thread alone: blocked before
  // any thread starts, so that every thread inherits the mask.
  sigset_t signals = block_stop_signals();

  // CURVE (issue 7): workers authenticate with an allow-listed key.
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
    in.curve_secret = secret.value();
    in.curve_allowed = allowed.value();
  }
  std::string host = in.host;
  std::map<std::string, std::string> endpoints_used = in.endpoints;
  std::string curve_public = in.curve_secret.empty() ? "" : curve_public_of(in.curve_secret).value();
  size_t curve_keys = in.curve_allowed.size();

  Daemon daemon(cfg, std::move(in));
  if (!curve_public.empty()) {
    log_info("workers must authenticate with CURVE",
             {{"public_key", curve_public}, {"allowed_keys", std::to_string(curve_keys)}});
  }
  auto bound = daemon.start(std::move(recovered));
  if (!bound) {
    log_error(bound.error());
    return 1;
  }

  std::string url_host = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::string url = std::string(cfg.access.tls_cert.empty() ? "http" : "https") + "://" + url_host + ":" +
                    std::to_string(bound.value());
  write_file_atomically(url_file(cfg.data_dir), url + "\n");
  std::string events = cfg.events_endpoint.empty() ? default_events_endpoint(cfg.data_dir) : cfg.events_endpoint;
  std::string control = cfg.control_endpoint.empty() ? default_control_endpoint(cfg.data_dir) : cfg.control_endpoint;
  LogFields fields = {{"url", url}, {"data_dir", cfg.data_dir}, {"events", events}, {"control", control}};
  for (const auto& [s, e] : endpoints_used) fields.push_back({"commands." + s, e});
  fields.push_back({"tokens", daemon.tokens_configured() ? daemon.tokens_path() : "none (loopback clients only)"});
  if (daemon.rate_limited()) fields.push_back({"rate_limit", cfg.access.rate_limit});
  log_info("ready", fields);
  daemon.set_ready(true);
  std::cout << "asyncopsd ready: " << url << std::endl;
  notify_service_ready("serving " + url);

  int sig = 0;
  sigwait(&signals, &sig);
  log_info("stopping", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
  daemon.set_ready(false);
  notify_service_stopping();
  ::unlink(url_file(cfg.data_dir).c_str());
  daemon.stop();
  if (daemon.store_corrupt()) pid_lock.keep_file();  // the next start checks the store
  log_info("stopped");
  return 0;
}

int daemon_main(int argc, char** argv) {
  // Before any connection opens: SQLite's process-wide settings, so that
  // corruption met by any connection makes the daemon not ready
  // (daemon/store_health.h).
  install_sqlite_error_log();
  install_wal_batching();
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
  app.add_option("--stream-threads", cfg.stream_threads,
                 "Threads serving the SSE, WebSocket and SignalR streams (default: one per core; 0: the I/O threads do)")
      ->envname("ASYNCOPS_STREAM_THREADS")
      ->check(CLI::Range(0, 256));
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
  CLI::Validator duration_check = duration_validator();
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
  LivenessFlags liveness;
  add_liveness_flags(app, &liveness,
                     "A tcp:// connection that is silent this long is closed, and its commands redelivered");
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
  auto config = apply_program_config(app, config_path, "daemon", args, {"config", "print-config"});
  if (!config) {
    std::cerr << "asyncopsd: " << config.error() << std::endl;
    return 1;
  }
  if (print_config) {
    nlohmann::json j = {{"config_file", config->file.path}, {"config_file_found", config->file.found}};
    nlohmann::json items = nlohmann::json::array();
    for (const auto& s : config->settings) items.push_back({{"key", s.key}, {"value", s.value}, {"source", s.source}});
    j["settings"] = items;
    std::cout << j.dump(2) << std::endl;
    return 0;
  }
  if (cfg.access.tls_cert.empty() != cfg.access.tls_key.empty()) {
    std::cerr << "asyncopsd: --tls-cert and --tls-key go together" << std::endl;
    return 2;
  }
  if (auto mode = parse_sync_mode(sync)) cfg.sync = mode.value();
  // Each text passed its option's duration check; a default always parses.
  const std::pair<const std::string*, std::chrono::milliseconds*> durations[] = {
      {&lease, &cfg.dispatch_options.lease},   {&backoff, &cfg.dispatch_options.backoff},
      {&retention, &cfg.retention},            {&worker_timeout, &cfg.worker_timeout},
      {&prune_interval, &cfg.prune_interval},  {&header_timeout, &cfg.header_timeout},
      {&body_timeout, &cfg.body_timeout},      {&idle_timeout, &cfg.idle_timeout},
      {&ws_ping, &cfg.ws_ping_interval},
  };
  for (const auto& [text, target] : durations) {
    if (auto d = parse_duration(*text)) *target = d.value();
  }
  auto live = liveness_from(liveness);
  if (!live) {
    std::cerr << "asyncopsd: " << live.error() << std::endl;
    return 2;
  }
  cfg.dispatch_options.liveness = live.value();
  return run_daemon(cfg);
}

}  // namespace asyncops
