#pragma once
// A handler program, run as a child of the worker in a process group of its
// own, with pipes on stdin, stdout and stderr.
//
// - The group, not only the child, is signalled, so that a shell script's
//   own children (a `sleep`, a `curl`) stop with it.
// - The child gets SIGKILL if the worker thread that started it dies
//   (PR_SET_PDEATHSIG): a worker killed with -9 leaves no handler running on,
//   which could otherwise apply its effect after a redelivery ran it again.
// - Every fd it gets is a pipe end; the worker's own fds are close-on-exec.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/result.h"

namespace asyncops {

struct ChildSpec {
  std::string command;            // run by /bin/sh -c
  std::string cwd;                // "" for the worker's own
  std::vector<std::string> env;   // KEY=VALUE, added to (and overriding) the worker's environment
};

class ChildProcess {
 public:
  // Starts spec. Must be called from a thread that outlives the child (see
  // PR_SET_PDEATHSIG above): the worker's runner threads do.
  static Result<std::unique_ptr<ChildProcess>> start(const ChildSpec& spec);
  // Stops the group (SIGTERM, then SIGKILL after grace) if still running.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return m_pid; }
  // Non-blocking pipe ends; -1 once closed.
  int stdin_fd() const { return m_in; }
  int stdout_fd() const { return m_out; }
  int stderr_fd() const { return m_err; }
  void close_stdin();
  void close_stdout();
  void close_stderr();

  // One round on the open pipes: waits up to `wait` for any of them, then
  // - with `written`, writes what it can of input from *written on, and
  //   closes stdin once all is written or the child stopped reading;
  // - reads stdout and stderr once each, into on_out and on_err.
  // A pipe at its end, or failing, is closed.
  // ready: something moved; idle: nothing did within wait (or a signal came);
  // closed: no pipe is open (it slept wait); failed: poll failed.
  enum class Pump { ready, idle, closed, failed };
  using Sink = std::function<void(const char* data, size_t n)>;
  Pump pump(std::chrono::milliseconds wait, const std::string& input, size_t* written, const Sink& on_out,
            const Sink& on_err);

  // Reaps the child if it has exited: its wait status then, else nullopt.
  std::optional<int> poll_exit();
  // SIGTERM to the group; if the child has not exited after grace, SIGKILL
  // to the group. Reaps the child. Returns its wait status.
  int stop_group(std::chrono::milliseconds grace);
  // SIGKILL to the group (its children too), whether or not the child has exited.
  void kill_group();
  bool exited() const { return m_exited; }
  int status() const { return m_status; }

 private:
  ChildProcess() = default;
  pid_t m_pid = -1;
  int m_in = -1, m_out = -1, m_err = -1;
  bool m_exited = false;
  int m_status = 0;
};

// "exit code 2", "signal SIGKILL" for a wait status.
std::string describe_wait_status(int status);

// Keeps the last `limit` bytes written to it (a stderr tail).
class TailBuffer {
 public:
  explicit TailBuffer(size_t limit) : m_limit(limit) {}
  void append(const char* data, size_t n);
  // The tail, with "…" in front if bytes were dropped, cut to whole lines
  // where it can be.
  std::string text() const;

 private:
  size_t m_limit;
  std::string m_data;
  bool m_dropped = false;
};

}  // namespace asyncops
