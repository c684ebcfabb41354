#include "workers/external/exec_handler.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "shared/json_limits.h"
#include "workers/external/child_process.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int k_exit_rejected = 3;
constexpr int k_exit_tempfail = 75;  // EX_TEMPFAIL

JsonLimits output_limits() {
  JsonLimits l;
  l.max_bytes = k_max_event_bytes;
  l.max_depth = k_max_message_depth - 1;  // it becomes the event's data
  l.max_values = k_max_event_values;
  return l;
}

std::string seconds_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
  return std::to_string(d.count()) + "ms";
}

std::string with_tail(std::string what, const std::string& tail) {
  return tail.empty() ? what : what + ": " + tail;
}

}  // namespace

Outcome completed_from_output(const Command& cmd, const std::string& out) {
  if (out.find_first_not_of(" \t\r\n") == std::string::npos) return outcomes::completed(cmd, nullptr);
  BoundedJson j = parse_json_within(out, output_limits());
  if (j.violation != JsonViolation::none || !j.value.is_object()) {
    // The effect may have happened: a second run could repeat it, so this
    // is recorded, not retried.
    return outcomes::failed(cmd, "bad_output",
                            "the handler succeeded but its output is not a JSON object" +
                                (j.error.empty() ? std::string() : " (" + j.error + ")"));
  }
  return outcomes::completed(cmd, std::move(j.value));
}

Outcome rejected_from_output(const Command& cmd, const std::string& out) {
  BoundedJson j = parse_json_within(out, output_limits());
  std::string code = "rejected", message;
  if (j.violation == JsonViolation::none && j.value.is_object()) {
    const auto& v = j.value;
    if (v.contains("code") && v["code"].is_string()) {
      std::string c = v["code"].get<std::string>();
      if (!c.empty() && c.size() <= k_max_id_bytes) code = clean_text(c);
    }
    if (v.contains("message") && v["message"].is_string()) message = v["message"].get<std::string>();
  } else {
    message = out;
  }
  if (message.size() > k_max_message_bytes - 4) message.resize(k_max_message_bytes - 4);
  return outcomes::rejected(cmd, code, message);
}

RunResult ExecHandler::handle(const Command& cmd, const RunContext& ctx) {
  ChildSpec spec;
  spec.command = m_options.command;
  spec.cwd = m_options.cwd;
  spec.env = m_options.env;
  spec.env.push_back("ASYNCOPS_REQUEST_ID=" + cmd.id);
  spec.env.push_back("ASYNCOPS_ATTEMPT=" + std::to_string(ctx.run));
  spec.env.push_back("ASYNCOPS_DELIVERY=" + std::to_string(cmd.attempt));
  spec.env.push_back("ASYNCOPS_COMMAND=" + cmd.name);
  spec.env.push_back("ASYNCOPS_SERVICE=" + ctx.service);
  auto started = ChildProcess::start(spec);
  if (!started) return RunResult::again("handler_failed", "cannot start the handler: " + started.error());
  ChildProcess& child = *started.value();

  const std::string input = encode(cmd).body + "\n";
  size_t written = 0;
  std::string out;
  bool out_over = false;
  TailBuffer err(k_stderr_tail_bytes);
  auto deadline = Clock::now() + ctx.timeout;
  int status = 0;
  bool exited = false;
  // One loop feeds stdin and drains stdout and stderr together, so that a
  // handler that writes before it has read all its input cannot deadlock.
  for (;;) {
    if (ctx.cancel->canceled()) {
      child.stop_group(m_options.kill_grace);
      return RunResult::stopped();
    }
    if (Clock::now() >= deadline) {
      child.stop_group(m_options.kill_grace);
      return RunResult::again("handler_timeout",
                              with_tail("the handler timed out after " + seconds_text(ctx.timeout), err.text()));
    }
    if (!exited) {
      if (auto st = child.poll_exit()) {
        exited = true;
        status = *st;
      }
    }
    if (exited && child.stdin_fd() >= 0) child.close_stdin();  // nobody reads it any more
    // Once the child has exited, what is left in the pipes is read at once;
    // a grandchild that keeps them open does not hold the outcome back.
    auto pumped = child.pump(
        std::chrono::milliseconds(exited ? 0 : 50), input, &written,
        [&](const char* data, size_t n) {
          if (out.size() + n > k_max_event_bytes) out_over = true;  // keep draining, keep nothing more
          else out.append(data, n);
        },
        [&](const char* data, size_t n) { err.append(data, n); });
    if (pumped == ChildProcess::Pump::failed || (exited && pumped != ChildProcess::Pump::ready)) break;
  }
  if (!exited) status = child.stop_group(m_options.kill_grace);
  else child.kill_group();  // what it left behind in its group
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    if (out_over) {
      return RunResult::done(outcomes::failed(
          cmd, "bad_output", "the handler succeeded but its output is over " + std::to_string(k_max_event_bytes) +
                                 " bytes, the event limit"));
    }
    return RunResult::done(completed_from_output(cmd, out));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == k_exit_rejected) {
    return RunResult::done(rejected_from_output(cmd, out_over ? std::string() : out));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == k_exit_tempfail) {
    return RunResult::again("handler_unavailable", with_tail("the handler asked to try again later (exit code 75)", err.text()));
  }
  return RunResult::again("handler_failed", with_tail("the handler failed (" + describe_wait_status(status) + ")", err.text()));
}

}  // namespace asyncops
