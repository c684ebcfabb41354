#include "workers/external/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <thread>

#include "shared/exec_args.h"

namespace asyncops {
namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

Result<std::unique_ptr<ChildProcess>> ChildProcess::start(const ChildSpec& spec) {
  // Everything the child needs is built before fork: after it, in a
  // threaded process, only async-signal-safe calls are allowed.
  std::map<std::string, std::string> overrides;
  for (const std::string& kv : spec.env) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) overrides[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  ExecArgs envp(ExecArgs::environment(overrides));
  ExecArgs argv({"/bin/sh", "-c", spec.command});

  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + strerror(errno)};
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]);
    return Error{std::string("pipe: ") + strerror(errno)};
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(in[0]), ::close(in[1]), ::close(out[0]), ::close(out[1]);
    return Error{std::string("pipe: ") + strerror(errno)};
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    return Error{std::string("fork: ") + strerror(e)};
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the worker died before prctl
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    // The worker ignores SIGPIPE; an ignored signal stays ignored across exec.
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
      const char msg[] = "asyncops-worker: cannot change to the service's directory\n";
      ssize_t ignored = ::write(STDERR_FILENO, msg, sizeof msg - 1);
      (void)ignored;
      ::_exit(126);
    }
    ::execve(argv.first(), argv.data(), envp.data());
    ::_exit(127);
  }
  // Both sides set the group, so that it exists before anyone signals it.
  ::setpgid(pid, pid);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  for (int fd : {in[1], out[0], err[0]}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->m_pid = pid;
  child->m_in = in[1];
  child->m_out = out[0];
  child->m_err = err[0];
  return child;
}

ChildProcess::~ChildProcess() {
  if (m_pid > 0 && !m_exited) stop_group(std::chrono::milliseconds(1000));
  close_fd(m_in);
  close_fd(m_out);
  close_fd(m_err);
}

void ChildProcess::close_stdin() { close_fd(m_in); }

ChildProcess::Pump ChildProcess::pump(std::chrono::milliseconds wait, const std::string& input, size_t* written,
                                      const Sink& on_out, const Sink& on_err) {
  pollfd fds[3];
  nfds_t n = 0;
  int in_at = -1, out_at = -1, err_at = -1;
  if (written && m_in >= 0) in_at = static_cast<int>(n), fds[n++] = {m_in, POLLOUT, 0};
  if (m_out >= 0) out_at = static_cast<int>(n), fds[n++] = {m_out, POLLIN, 0};
  if (m_err >= 0) err_at = static_cast<int>(n), fds[n++] = {m_err, POLLIN, 0};
  int r = ::poll(fds, n, static_cast<int>(wait.count()));
  if (r < 0) return errno == EINTR ? Pump::idle : Pump::failed;
  if (n == 0) return Pump::closed;
  if (r == 0) return Pump::idle;
  if (in_at >= 0 && fds[in_at].revents) {
    if (fds[in_at].revents & (POLLERR | POLLHUP)) {
      close_stdin();  // it stopped reading: fine, it has what it wanted
    } else {
      ssize_t w = ::write(m_in, input.data() + *written, input.size() - *written);
      if (w > 0) *written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || *written == input.size()) close_stdin();
    }
  }
  char buf[65536];
  auto drain = [&buf](int at, pollfd* fds, int& fd, const Sink& sink) {
    if (at < 0 || !fds[at].revents) return;
    ssize_t got = ::read(fd, buf, sizeof buf);
    if (got > 0) sink(buf, static_cast<size_t>(got));
    else if (got == 0 || (errno != EAGAIN && errno != EINTR)) close_fd(fd);
  };
  drain(out_at, fds, m_out, on_out);
  drain(err_at, fds, m_err, on_err);
  return Pump::ready;
}
void ChildProcess::close_stdout() { close_fd(m_out); }
void ChildProcess::close_stderr() { close_fd(m_err); }

std::optional<int> ChildProcess::poll_exit() {
  if (!m_exited) {
    int st = 0;
    pid_t r = ::waitpid(m_pid, &st, WNOHANG);
    if (r == m_pid) {
      m_exited = true;
      m_status = st;
    }
  }
  if (!m_exited) return std::nullopt;
  return m_status;
}

void ChildProcess::kill_group() {
  if (m_pid > 0) ::kill(-m_pid, SIGKILL);
}

int ChildProcess::stop_group(std::chrono::milliseconds grace) {
  if (poll_exit()) {
    // The child is gone; what it left running in its group goes too.
    ::kill(-m_pid, SIGKILL);
    return m_status;
  }
  ::kill(-m_pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (poll_exit()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(-m_pid, SIGKILL);
  if (!m_exited) {
    int st = 0;
    if (::waitpid(m_pid, &st, 0) == m_pid) m_status = st;
    m_exited = true;
  }
  return m_status;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    return std::string("signal ") + (name ? std::string("SIG") + name : std::to_string(WTERMSIG(status)));
  }
  return "wait status " + std::to_string(status);
}

void TailBuffer::append(const char* data, size_t n) {
  if (n >= m_limit) {
    m_dropped = m_dropped || n > m_limit || !m_data.empty();
    m_data.assign(data + (n - m_limit), m_limit);
    return;
  }
  m_data.append(data, n);
  if (m_data.size() > m_limit) {
    m_data.erase(0, m_data.size() - m_limit);
    m_dropped = true;
  }
}

std::string TailBuffer::text() const {
  std::string t = m_data;
  if (m_dropped) {
    auto nl = t.find('\n');
    if (nl != std::string::npos && nl + 1 < t.size()) t = t.substr(nl + 1);
    t = "…" + t;
  }
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

}  // namespace asyncops
