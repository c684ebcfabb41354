#include "workers/external/service_factory.h"

#include "workers/external/exec_handler.h"
#include "workers/external/external_runner.h"
#include "workers/external/http_handler.h"
#include "workers/external/lines_handler.h"

namespace asyncops {

Result<Service> make_service(const ServiceConfig& config) {
  if (is_builtin_service_kind(config.kind)) {
    const Service* builtin = find_service(config.kind);
    if (!builtin) return Error{"[service." + config.name + "]: kind " + config.kind + " is not built into this worker"};
    Service s = *builtin;
    s.name = config.name;  // its own database, DATA_DIR/<name>.db, and commands endpoint
    return s;
  }
  auto external = std::make_shared<ExternalService>();
  external->options.concurrency = config.concurrency;
  external->options.attempts = config.attempts;
  external->options.timeout = config.timeout;
  external->options.backoff = config.backoff;
  if (config.kind == "exec") {
    ExecOptions exec;
    exec.command = config.command;
    exec.cwd = config.base_dir;
    exec.env = config.env;
    if (config.lines) external->handler = std::make_shared<LinesHandler>(exec);
    else external->handler = std::make_shared<ExecHandler>(exec);
  } else if (config.kind == "http") {
    HttpOptions http;
    http.url = config.url;
    http.method = config.method;
    http.ca_file = config.ca_file;
    auto handler = HttpHandler::create(http);
    if (!handler) return Error{"[service." + config.name + "]: " + handler.error()};
    external->handler = std::shared_ptr<HttpHandler>(std::move(handler.value()));
  } else {
    return Error{"[service." + config.name + "]: unknown kind '" + config.kind + "'"};
  }
  Service s;
  s.name = config.name;
  s.kind = config.kind;
  s.external = std::move(external);
  return s;
}

}  // namespace asyncops
