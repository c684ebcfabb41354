#include "workers/worker_main.h"

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>

#include "shared/config.h"
#include "shared/curve.h"
#include "shared/duration.h"
#include "shared/liveness.h"
#include "shared/log.h"
#include "shared/paths.h"
#include "shared/service_config.h"
#include "workers/external/service_factory.h"
#include "workers/worker.h"

namespace asyncops {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop = true; }
}  // namespace

int worker_main(int argc, char** argv) {
  CLI::App app{"asyncops-worker: runs a service's handlers for commands from asyncopsd"};
  app.set_version_flag("--version", std::string("asyncops-worker ") + "0.1.0");
  WorkerOptions opts;
  opts.data_dir = default_data_dir();
  std::string service = "users", log_format = "text", log_level = "info";
  app.add_option("--service", service,
                 "The service to run: built in (users; the demo services inventory, payments, orders), or one declared in a [service.NAME] section of the config")
      ->envname("ASYNCOPS_SERVICE");
  app.add_option("--data-dir", opts.data_dir, "Directory for the service database")
      ->envname("ASYNCOPS_DATA_DIR");
  app.add_option("--commands", opts.commands_endpoint,
                 "ZeroMQ endpoint of the daemon's commands socket (default ipc://DATA_DIR/commands.SERVICE.ipc)")
      ->envname("ASYNCOPS_COMMANDS");
  app.add_option("--events", opts.events_endpoint,
                 "ZeroMQ endpoint to publish events to (default ipc://DATA_DIR/events.ipc)")
      ->envname("ASYNCOPS_EVENTS");
  app.add_option("--control", opts.control_endpoint,
                 "ZeroMQ endpoint of the daemon's cancel notices (default ipc://DATA_DIR/control.ipc; '-' for none)")
      ->envname("ASYNCOPS_CONTROL");
  app.add_option("--id", opts.id, "Worker id in events and heartbeats (default HOST/PID/RANDOM; at most 128 bytes)")
      ->check([](const std::string& id) {
        return id.size() > k_max_id_bytes ? "a worker id is at most " + std::to_string(k_max_id_bytes) + " bytes"
                                          : std::string();
      });
  std::string curve_secret_file, curve_server_key;
  app.add_option("--curve-secret-key-file", curve_secret_file,
                 "This worker's CURVE secret key (from `asyncops keygen`); its public key must be on the "
                 "daemon's --curve-allowed-keys")
      ->envname("ASYNCOPS_CURVE_SECRET_KEY_FILE")
      ->check(CLI::ExistingFile);
  app.add_option("--curve-server-key", curve_server_key,
                 "The daemon's CURVE public key (Z85, or a file holding it)")
      ->envname("ASYNCOPS_CURVE_SERVER_KEY");
  app.add_option("--heartbeat-ms", opts.heartbeat_ms, "Heartbeat interval")->check(CLI::Range(50, 60000));
  LivenessFlags liveness;
  add_liveness_flags(app, &liveness, "A tcp:// connection that is silent this long is closed and made again");
  app.add_option("--log-format", log_format, "text or json")
      ->envname("ASYNCOPS_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "debug, info, warn or error")
      ->envname("ASYNCOPS_LOG_LEVEL")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  std::string config_path;
  app.add_option("--config", config_path,
                 "Configuration file, [worker] section (default $ASYNCOPS_CONFIG, "
                 "$XDG_CONFIG_HOME/asyncops/asyncops.conf or ~/.config/asyncops/asyncops.conf)");
  app.footer(
      "Precedence: flag > ASYNCOPS_* environment > config file > default. See asyncops-worker(1).\n"
      "Examples:\n"
      "  asyncops-worker --service users\n"
      "  asyncops-worker --commands tcp://10.0.0.5:5557 --events tcp://10.0.0.5:5556 --control -");
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto applied = apply_program_config(app, config_path, "worker", args, {"config"});
  if (!applied) {
    std::cerr << "asyncops-worker: " << applied.error() << std::endl;
    return 1;
  }
  auto level = parse_log_level(log_level);  // the option's check refused any other text
  log_configure("asyncops-worker", log_format == "json" ? LogFormat::json : LogFormat::text,
                level ? level.value() : LogLevel::info);
  // A [service.NAME] section says how to run NAME (issue 13); without one,
  // NAME must be built in.
  const ConfigFile& file = applied->file;
  Service chosen;
  if (file.section("service." + service)) {
    auto config = find_service_config(file, service);
    auto made = config ? make_service(config.value()) : Result<Service>(Error{config.error()});
    if (!made) {
      log_error(made.error());
      return 2;
    }
    chosen = std::move(made.value());
  } else if (const Service* builtin = find_service(service)) {
    chosen = *builtin;
  } else {
    log_error("unknown service '" + service + "': not built in (users, inventory, payments, orders) and not declared in a [service." + service +
              "] section of " + (file.found ? file.path : "the config (no config file found)"));
    return 2;
  }
  const Service* svc = &chosen;
  auto live = liveness_from(liveness);
  if (!live) {
    log_error(live.error());
    return 2;
  }
  opts.liveness = live.value();
  bool control_given = !opts.control_endpoint.empty();
  if (opts.commands_endpoint.empty()) opts.commands_endpoint = default_commands_endpoint(opts.data_dir, service);
  if (opts.events_endpoint.empty()) opts.events_endpoint = default_events_endpoint(opts.data_dir);
  if (opts.control_endpoint.empty()) opts.control_endpoint = default_control_endpoint(opts.data_dir);
  if (opts.control_endpoint == "-") opts.control_endpoint.clear();
  bool remote = opts.commands_endpoint.rfind("tcp://", 0) == 0;
  if (remote && !control_given) {
    // The default control endpoint is an ipc:// path on this host: a daemon
    // on another host is not there, and its notices would never arrive.
    log_warn("this worker connects over tcp:// without --control: it will not hear cancel or fence notices "
             "(it connects to " + opts.control_endpoint + " on this host); pass --control tcp://DAEMON:PORT, "
             "or --control - to say you mean it");
  } else if (opts.control_endpoint.empty()) {
    log_warn("--control -: this worker will not hear cancel or fence notices (a claim's grant still carries a "
             "cancel asked before the command starts)");
  }
  if (remote && service == "users") {
    log_warn("the users service keeps its users in " + opts.data_dir + "/users.db on this host: workers of it on "
             "several hosts are several separate user sets, each with its own dedupe table "
             "(docs/protocol.md, \"Workers on other hosts\")");
  }
  if (curve_secret_file.empty() != curve_server_key.empty()) {
    log_error("--curve-secret-key-file and --curve-server-key go together");
    return 2;
  }
  if (!curve_secret_file.empty()) {
    auto secret = read_curve_key(curve_secret_file, "secret");
    auto server = curve_server_key.size() == 40 ? Result<std::string>(curve_server_key)
                                                : read_curve_key(curve_server_key, "public");
    if (!secret || !server) {
      log_error(!secret ? secret.error() : server.error());
      return 2;
    }
    opts.curve_secret_key = secret.value();
    opts.curve_public_key = curve_public_of(secret.value()).value();
    opts.curve_server_key = server.value();
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  try {
    Worker worker(opts, *svc);
    return worker.run(g_stop);
  } catch (const std::exception& e) {
    log_error("worker stopped on an error", {{"error", e.what()}});
    return 1;
  }
}

}  // namespace asyncops
