#pragma once
// Services declared in the config file (issue 13): one [service.NAME]
// section each, read by `asyncops up` (which workers to start) and by
// asyncops-worker --service NAME (how to run it). See asyncops.conf(5).
//
//   [service.orders]
//   kind = exec                 # exec, http, or a built-in service: users, inventory, payments, orders
//   command = ./orders.sh       # exec: run by /bin/sh -c, in the config file's directory
//   lines = false               # exec: one long-lived process, JSON lines in and out
//   url = http://127.0.0.1:9000/orders/{id}   # http: the upstream; {param} from the route
//   method = POST               # http: instead of the route's
//   ca = /etc/ssl/upstream.pem  # http: the CA for an https:// upstream
//   workers = 1                 # processes `asyncops up` starts
//   concurrency = 1             # commands at once in each
//   timeout = 30s               # of one run of the handler
//   attempts = 3                # runs of one delivery before it ends failed
//   backoff = 1s                # before the second run; doubles
//   env = KEY=VALUE             # may repeat
#include <chrono>
#include <string>
#include <vector>

#include "shared/config.h"
#include "shared/result.h"

namespace asyncops {

// The services built into asyncops-worker (workers/services.cpp), which a
// section's kind may name: the section's service then runs that service's
// handlers with its own database, DATA_DIR/NAME.db.
inline const char* const k_builtin_service_kinds[] = {"users", "inventory", "payments", "orders"};
bool is_builtin_service_kind(const std::string& kind);

struct ServiceConfig {
  std::string name;
  std::string kind = "users";
  std::string command;
  std::string url;
  std::string method;
  std::string ca_file;
  bool lines = false;
  int workers = 1;
  int concurrency = 1;
  std::chrono::milliseconds timeout{30000};
  int attempts = 3;
  std::chrono::milliseconds backoff{1000};
  std::vector<std::string> env;  // KEY=VALUE
  std::string base_dir;          // the config file's directory: where command runs
  int line = 0;                  // of the section header, for messages
};

// Every [service.NAME] section of file, in file order, checked: a one-line
// error names the file, line and key of the first problem.
Result<std::vector<ServiceConfig>> load_service_configs(const ConfigFile& file);

// The one named name, or an error saying it is not declared in file.
Result<ServiceConfig> find_service_config(const ConfigFile& file, const std::string& name);

// declared against the services the route table uses: ok if they agree,
// else an error of one line naming the first service declared but used by
// no route, or used by a route but not declared.
Status check_services_match(const std::vector<ServiceConfig>& declared,
                                 const std::vector<std::string>& route_services, const std::string& config_path);

// Whether name can name a service: 1 to 64 of [A-Za-z0-9_.-] (it becomes
// part of socket and database file names).
bool valid_service_name(const std::string& name);

}  // namespace asyncops
