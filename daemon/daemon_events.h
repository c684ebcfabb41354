#pragma once
// The events asyncopsd reports itself, as a worker would, for an operation
// that no worker will end: the one place where they are built, so that they
// all name the daemon as their worker and read alike in the history.
#include <string>

#include "shared/envelope.h"

namespace asyncops {

// The `worker` of every event the daemon makes.
inline constexpr const char* k_daemon_worker = "asyncopsd";

// A command taken back before any worker saw it (a cancel): it ends
// canceled/canceled, with attempt 0 (never sent). command is the
// operation's name: the event's type is "<command>_canceled".
Event canceled_before_dispatch(const std::string& op_id, const std::string& command);

// failed/command_too_large for a saga step's (or compensation's) command of
// `bytes` bytes, over k_max_command_bytes: never sent, so no worker has it.
Event command_too_large(const std::string& request_id, int attempt, size_t bytes);

// Why the daemon gave up on an operation.
enum class GaveUp {
  leases_ran_out,  // every attempt ran out of its lease without progress
  before_restart,  // the attempts were used up before the daemon restarted
};
// failed/worker_timeout after `attempts` deliveries.
Event worker_timeout(const std::string& op_id, int attempts, GaveUp why);

}  // namespace asyncops
