#pragma once
// The exec kind: a program per command (docs/protocol.md, "Services without
// C++"). It gets the command document on stdin and, in its environment,
// ASYNCOPS_REQUEST_ID, ASYNCOPS_ATTEMPT, ASYNCOPS_COMMAND and
// ASYNCOPS_SERVICE. Its exit code says what happened:
//
//   0   completed; stdout is the resource's representation (a JSON object,
//       or nothing), {"deleted": true} a delete
//   3   rejected; stdout is {"code": ..., "message": ...}
//   75  EX_TEMPFAIL: a failed attempt, run again later
//   any other exit, a signal, or the timeout: a failed attempt
//
// stdout is read up to the event limit (1 MiB; more is a failed outcome,
// `bad_output`); stderr only for its last 4 KiB, the message of a failure.
#include <chrono>
#include <string>
#include <vector>

#include "workers/external/handler.h"

namespace asyncops {

struct ExecOptions {
  std::string command;           // run by /bin/sh -c
  std::string cwd;               // "" for the worker's own
  std::vector<std::string> env;  // KEY=VALUE
  // After SIGTERM to a handler's process group, how long before SIGKILL.
  std::chrono::milliseconds kill_grace{2000};
};

// How much of stderr a failure's message keeps.
inline constexpr size_t k_stderr_tail_bytes = 4096;

class ExecHandler : public ExternalHandler {
 public:
  explicit ExecHandler(ExecOptions options) : m_options(std::move(options)) {}
  RunResult handle(const Command& cmd, const RunContext& ctx) override;
  const char* kind() const override { return "exec"; }

 private:
  ExecOptions m_options;
};

// What a completed or rejected output means, shared with the lines mode:
// stdout of exit 0 (completed), of exit 3 (rejected).
Outcome completed_from_output(const Command& cmd, const std::string& out);
Outcome rejected_from_output(const Command& cmd, const std::string& out);

}  // namespace asyncops
