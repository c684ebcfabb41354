#pragma once
// The exec kind with `lines = true`: one long-lived program per worker, for
// handlers that are costly to start. It reads commands as JSON lines on
// stdin (each line one command document) and writes one outcome line per
// command on stdout, in any order:
//
//   {"id": ID, "outcome": "completed", "data": {...}}      (data optional)
//   {"id": ID, "outcome": "completed", "deleted": true}
//   {"id": ID, "outcome": "rejected", "code": "...", "message": "..."}
//   {"id": ID, "outcome": "retry", "message": "..."}       (as exit 75)
//   {"id": ID, "outcome": "failed", "message": "..."}      (a failed attempt)
//
// The program is started on the first command and again on the next one
// after it dies. A command that times out or is canceled stops the program
// (SIGTERM to its group, then SIGKILL): the commands it had in hand at that
// moment fail their attempt and are run again. A line that is not JSON, over
// 1 MiB, or names no command in hand is logged and ignored.
#include <memory>

#include "shared/mutex.h"
#include "workers/external/exec_handler.h"

namespace asyncops {

class LinesHandler : public ExternalHandler {
 public:
  explicit LinesHandler(ExecOptions options);
  ~LinesHandler() override;
  RunResult handle(const Command& cmd, const RunContext& ctx) override;
  const char* kind() const override { return "exec"; }

  struct Process;  // one run of the program, with the thread that reads it

 private:
  // The running program, started if there is none or it died.
  Result<std::shared_ptr<Process>> current(const std::string& service);
  // Stops p if it is still the current program.
  void restart(const std::shared_ptr<Process>& p);

  ExecOptions m_options;
  Mutex m_mutex;
  std::shared_ptr<Process> m_process GUARDED_BY(m_mutex);
};

}  // namespace asyncops
