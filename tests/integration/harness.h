#pragma once
// Integration harness: starts the real asyncopsd and asyncops-worker
// binaries on a free port and a temp data dir, and runs the real CLI.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace asyncops::it {

using Clock = std::chrono::steady_clock;

struct TempDir {
  std::string path;
  TempDir();  // short, under /tmp: ipc:// paths must fit in 107 bytes
  ~TempDir();
};

// A child process; killed (SIGKILL) if still running when destroyed.
class Process {
 public:
  Process() = default;
  Process(std::vector<std::string> args, const std::string& log_path,
          const std::map<std::string, std::string>& env = {});
  Process(Process&& o) noexcept;
  Process& operator=(Process&& o) noexcept;
  ~Process();

  pid_t pid() const { return m_pid; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the wait status, or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);

 private:
  pid_t m_pid = -1;
};

// The whole content of a file ("" if it cannot be read).
std::string slurp(const std::string& path);

// The non-empty lines of text, in order.
std::vector<std::string> lines_of(const std::string& text);

// Polls pred until it is true or the deadline passes.
bool eventually(const std::function<bool()>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(15));

// One server-sent event as the tests read it: its id (-1 without an id
// line) and its data line ("" without one).
struct SseBlock {
  int64_t id = -1;
  std::string data;
};
// Appends the n bytes at d of an SSE stream to buf, and calls on_event for
// each event now complete (ended by a blank line), removing it from buf.
// Returns false as soon as on_event does (the caller stops reading).
bool feed_sse(std::string& buf, const char* d, size_t n, const std::function<bool(const SseBlock&)>& on_event);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;
  std::string body;
  nlohmann::json json;
  std::string header(const std::string& name) const;
};

class System {
 public:
  explicit System(int workers = 2, std::vector<std::string> daemon_args = {});
  ~System();

  void start_daemon(std::vector<std::string> extra = {});
  void start_worker(std::vector<std::string> extra = {});  // extra: more worker flags
  void stop_daemon(int sig);  // signal, then wait for exit

  Response get(const std::string& path, const httplib::Headers& headers = {});
  Response send(const std::string& method, const std::string& path, const std::string& body,
                const std::string& content_type = "application/json",
                const httplib::Headers& headers = {});
  // POST /users and return the 202's body.
  nlohmann::json create_user(const std::string& email, const std::string& name);
  // Long-polls until the operation is terminal (the daemon's ?wait).
  nlohmann::json wait_terminal(const std::string& op_id, int seconds = 20);

  std::string logs() const;  // the daemon's and workers' logs, for failure messages
  const std::string& url() const { return m_url; }
  const std::string& data_dir() const { return m_dir.path; }
  Process& daemon() { return m_daemon; }
  std::vector<Process>& workers() { return m_workers; }

 private:
  TempDir m_dir;
  std::vector<std::string> m_daemon_args;
  Process m_daemon;
  std::vector<Process> m_workers;
  std::string m_url;
};

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
// Runs the asyncops CLI with args, with env added to the environment.
CliResult run_cli(const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(60));

// The last non-empty line of s (a CLI's final output line).
std::string last_line(const std::string& s);
// Waits (at most timeout) until the file at log_path has a line that starts
// with http:// (the URL `asyncops up` prints), and returns it; "" on timeout.
std::string wait_for_url_line(const std::string& log_path,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));
// `asyncops token add` for dir; returns the new token. Throws on failure.
std::string add_token(const std::string& dir, const std::string& principal, const std::string& role);

// A TCP port on 127.0.0.1 that was free a moment ago (for tcp:// endpoints).
int free_port();
// tcp://127.0.0.1:port
inline std::string tcp(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// The value of a metric line that starts with name (labels included), or -1.
int64_t metric(System& sys, const std::string& name);

}  // namespace asyncops::it
