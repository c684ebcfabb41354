#include "daemon/service_manager.h"

#include <systemd/sd-daemon.h>

#include "shared/log.h"

namespace asyncops {
namespace {
void notify(const std::string& state) {
  // 0: not under a service manager; < 0: its socket refused the message,
  // which only costs the manager's view of us, so it is logged and the
  // daemon goes on.
  int rc = sd_notify(0, state.c_str());
  if (rc < 0) log_warn("sd_notify failed", {{"state", state}, {"errno", std::to_string(-rc)}});
}
}  // namespace

void notify_service_ready(const std::string& status) { notify("READY=1\nSTATUS=" + status); }

void notify_service_stopping() { notify("STOPPING=1\nSTATUS=stopping"); }

}  // namespace asyncops
