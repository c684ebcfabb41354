#include "daemon/daemon_events.h"

namespace asyncops {

Event canceled_before_dispatch(const std::string& op_id, const std::string& command) {
  Event e;
  e.request_id = op_id;
  e.type = command + "_canceled";
  e.state = OpState::canceled;
  e.code = "canceled";
  e.message = "canceled before it was dispatched";
  e.worker = k_daemon_worker;
  e.attempt = 0;  // never sent
  return e;
}

Event command_too_large(const std::string& request_id, int attempt, size_t bytes) {
  Event e;
  e.request_id = request_id;
  e.state = OpState::failed;
  e.type = "command_too_large";
  e.code = "command_too_large";
  e.message = "its command would be " + std::to_string(bytes) + " bytes, over the " +
              std::to_string(k_max_command_bytes) + "-byte limit: the data of the steps before it is too large";
  e.worker = k_daemon_worker;
  e.attempt = attempt;
  return e;
}

Event worker_timeout(const std::string& op_id, int attempts, GaveUp why) {
  Event e;
  e.request_id = op_id;
  e.state = OpState::failed;
  e.type = "worker_timeout";
  e.code = "worker_timeout";
  e.message = why == GaveUp::before_restart
                  ? "no worker finished it: all " + std::to_string(attempts) +
                        " attempts were used before the daemon restarted"
                  : "no worker finished it: " + std::to_string(attempts) +
                        " attempts each ran out of their lease without progress";
  e.worker = k_daemon_worker;
  e.attempt = attempts;
  return e;
}

}  // namespace asyncops
