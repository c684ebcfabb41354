#include "workers/external/lines_handler.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <optional>
#include <thread>

#include "shared/json_limits.h"
#include "shared/log.h"
#include "shared/mutex.h"
#include "workers/external/child_process.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;

// An outcome line is an event's data and a little more.
constexpr size_t k_max_line_bytes = k_max_event_bytes + 4096;

}  // namespace

struct LinesHandler::Process {
  struct Slot {
    const Command* cmd = nullptr;
    std::optional<RunResult> result;
  };

  std::unique_ptr<ChildProcess> child;  // reaped by the reader thread only
  std::chrono::milliseconds kill_grace{2000};
  std::thread reader;
  std::atomic<bool> stop_requested{false};

  Mutex mutex;
  CondVar changed;  // signalled when a result arrives or the program dies
  std::map<std::string, Slot> waiting GUARDED_BY(mutex);  // by request id
  bool dead GUARDED_BY(mutex) = false;
  std::string death GUARDED_BY(mutex);  // why it died

  Mutex write_mutex;  // one line at a time on stdin

  ~Process() {
    stop_requested = true;
    if (reader.joinable()) reader.join();
  }

  void read_loop();
  void deliver(const std::string& line);
};

void LinesHandler::Process::deliver(const std::string& line) {
  if (line.find_first_not_of(" \t\r") == std::string::npos) return;
  JsonLimits limits;
  limits.max_bytes = k_max_line_bytes;
  limits.max_depth = k_max_message_depth;
  limits.max_values = k_max_event_values;
  BoundedJson j = parse_json_within(line, limits);
  const auto& v = j.value;
  if (j.violation != JsonViolation::none || !v.is_object() || !v.contains("id") || !v["id"].is_string() ||
      !v.contains("outcome") || !v["outcome"].is_string()) {
    log_warn("the lines handler wrote a line that is not an outcome; ignored",
             {{"error", j.error.empty() ? "expected {\"id\": ..., \"outcome\": ...}" : j.error}});
    return;
  }
  std::string id = v["id"].get<std::string>();
  std::string kind = v["outcome"].get<std::string>();
  MutexLock lock(&mutex);
  auto it = waiting.find(id);
  if (it == waiting.end() || it->second.result) {
    log_warn("the lines handler answered a command it does not have; ignored", {{"request_id", id}});
    return;
  }
  const Command& cmd = *it->second.cmd;
  auto text = [&](const char* key) {
    return v.contains(key) && v[key].is_string() ? v[key].get<std::string>() : std::string();
  };
  RunResult r;
  if (kind == "completed") {
    nlohmann::json data = nullptr;
    if (v.contains("deleted") && v["deleted"] == true) data = {{"deleted", true}};
    else if (v.contains("data") && v["data"].is_object()) data = v["data"];
    else if (v.contains("data") && !v["data"].is_null()) {
      r = RunResult::done(outcomes::failed(cmd, "bad_output", "the handler succeeded but its data is not a JSON object"));
    }
    if (r.outcome.code.empty()) r = RunResult::done(outcomes::completed(cmd, std::move(data)));
  } else if (kind == "rejected") {
    nlohmann::json rej = {{"code", text("code")}, {"message", text("message")}};
    r = RunResult::done(rejected_from_output(cmd, rej.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
  } else if (kind == "retry") {
    r = RunResult::again("handler_unavailable", "the handler asked to try again later: " + text("message"));
  } else if (kind == "failed") {
    r = RunResult::again("handler_failed", "the handler failed: " + text("message"));
  } else {
    log_warn("the lines handler wrote an unknown outcome; ignored", {{"request_id", id}, {"outcome", kind}});
    return;
  }
  it->second.result = std::move(r);
  changed.notify_all();
}

void LinesHandler::Process::read_loop() {
  std::string buffer;
  bool discarding = false;  // in a line over k_max_line_bytes
  TailBuffer err(k_stderr_tail_bytes);
  bool termed = false, exited = false;
  Clock::time_point termed_at{};
  int status = 0;
  for (;;) {
    if (stop_requested && !termed) {
      ::kill(-child->pid(), SIGTERM);
      termed = true;
      termed_at = Clock::now();
    }
    if (termed && Clock::now() - termed_at > kill_grace) child->kill_group();
    if (!exited) {
      if (auto st = child->poll_exit()) {
        exited = true;
        status = *st;
      }
    }
    auto pumped = child->pump(
        std::chrono::milliseconds(exited ? 0 : 50), std::string(), nullptr,  // stdin is written by the callers
        [&](const char* data, size_t n) {
          for (size_t i = 0; i < n; ++i) {
            if (data[i] == '\n') {
              if (!discarding) deliver(buffer);
              buffer.clear();
              discarding = false;
            } else if (!discarding) {
              buffer += data[i];
              if (buffer.size() > k_max_line_bytes) {
                log_warn("the lines handler wrote a line over the limit; ignored",
                         {{"limit", std::to_string(k_max_line_bytes)}});
                buffer.clear();
                discarding = true;
              }
            }
          }
        },
        [&](const char* data, size_t n) { err.append(data, n); });
    if (pumped == ChildProcess::Pump::failed || (exited && pumped != ChildProcess::Pump::ready)) break;
    // stdout closed but the program runs on: it can answer nothing more.
    if (child->stdout_fd() < 0 && !exited && !termed) stop_requested = true;
  }
  if (!exited) {
    child->kill_group();
    status = child->stop_group(std::chrono::milliseconds(0));
  } else {
    child->kill_group();  // what it left behind in its group
  }
  std::string why = stop_requested ? "the handler program was stopped (a command it had timed out or was canceled)"
                                   : "the handler program exited (" + describe_wait_status(status) + ")";
  std::string tail = err.text();
  if (!stop_requested) log_warn("the lines handler program ended", {{"status", describe_wait_status(status)}, {"stderr", clean_text(tail)}});
  MutexLock lock(&mutex);
  dead = true;
  death = tail.empty() ? why : why + ": " + tail;
  changed.notify_all();
}

LinesHandler::LinesHandler(ExecOptions options) : m_options(std::move(options)) {}

LinesHandler::~LinesHandler() {
  MutexLock lock(&m_mutex);
  m_process.reset();
}

Result<std::shared_ptr<LinesHandler::Process>> LinesHandler::current(const std::string& service) {
  MutexLock lock(&m_mutex);
  if (m_process) {
    MutexLock plock(&m_process->mutex);
    if (!m_process->dead) return m_process;
  }
  ChildSpec spec;
  spec.command = m_options.command;
  spec.cwd = m_options.cwd;
  spec.env = m_options.env;
  spec.env.push_back("ASYNCOPS_SERVICE=" + service);
  spec.env.push_back("ASYNCOPS_LINES=1");
  auto child = ChildProcess::start(spec);
  if (!child) return Error{child.error()};
  auto p = std::make_shared<Process>();
  p->child = std::move(child.value());
  p->kill_grace = m_options.kill_grace;
  Process* raw = p.get();
  p->reader = std::thread([raw] { raw->read_loop(); });
  log_info("started the lines handler program", {{"pid", std::to_string(p->child->pid())}});
  m_process = p;  // the one before, if any, is joined by whoever lets go of it last
  return p;
}

void LinesHandler::restart(const std::shared_ptr<Process>& p) {
  p->stop_requested = true;
  MutexLock lock(&m_mutex);
  if (m_process == p) m_process.reset();
}

RunResult LinesHandler::handle(const Command& cmd, const RunContext& ctx) {
  auto deadline = Clock::now() + ctx.timeout;
  auto got = current(ctx.service);
  if (!got) return RunResult::again("handler_failed", "cannot start the handler: " + got.error());
  std::shared_ptr<Process> p = got.value();
  {
    MutexLock lock(&p->mutex);
    p->waiting[cmd.id].cmd = &cmd;
  }
  auto forget = [&] {
    MutexLock lock(&p->mutex);
    p->waiting.erase(cmd.id);
  };
  auto timed_out = [&] {
    forget();
    restart(p);
    return RunResult::again("handler_timeout", "the handler timed out after " + std::to_string(ctx.timeout.count()) + "ms");
  };
  // The line, written whole, under the write lock: lines must not interleave.
  {
    MutexLock wlock(&p->write_mutex);
    std::string line = encode(cmd).body + "\n";
    size_t written = 0;
    while (written < line.size()) {
      if (ctx.cancel->canceled()) {
        forget();
        restart(p);
        return RunResult::stopped();
      }
      if (Clock::now() >= deadline) return timed_out();
      int fd = p->child->stdin_fd();
      pollfd pfd{fd, POLLOUT, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      ssize_t w = ::write(fd, line.data() + written, line.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      else if (w < 0 && errno != EAGAIN && errno != EINTR) break;  // it died: the reader says why
      if (pfd.revents & (POLLERR | POLLHUP)) break;
    }
  }
  bool canceled = false;
  {
    MutexLock lock(&p->mutex);
    for (;;) {
      auto& slot = p->waiting[cmd.id];
      if (slot.result) {
        RunResult r = std::move(*slot.result);
        p->waiting.erase(cmd.id);
        return r;
      }
      if (p->dead) {
        std::string why = p->death;
        p->waiting.erase(cmd.id);
        return RunResult::again("handler_failed", why);
      }
      if (ctx.cancel->canceled()) {
        p->waiting.erase(cmd.id);
        canceled = true;
        break;
      }
      if (Clock::now() >= deadline) break;
      // A cancel does not signal changed: look again every 50 ms.
      p->changed.wait_until(&p->mutex, std::min(deadline, Clock::now() + std::chrono::milliseconds(50)));
    }
  }
  // Outside the lock: restart() and timed_out() take locks of their own.
  if (canceled) {
    restart(p);
    return RunResult::stopped();
  }
  return timed_out();
}

}  // namespace asyncops
