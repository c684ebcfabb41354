#include "harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "shared/exec_args.h"

namespace asyncops::it {

TempDir::TempDir() {
  char tmpl[] = "/tmp/aoi-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
}

TempDir::~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }

namespace {
pid_t spawn(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path, const std::map<std::string, std::string>& env) {
  // Built before fork: the child may not allocate (shared/exec_args.h).
  ExecArgs argv(args);
  ExecArgs envp(ExecArgs::environment(env));
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int err = err_path == out_path ? out : ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  ::dup2(out, 1);
  ::dup2(err, 2);
  int devnull = ::open("/dev/null", O_RDONLY);
  ::dup2(devnull, 0);
  ::execve(argv.first(), argv.data(), envp.data());
  ::_exit(127);
}

}  // namespace

Process::Process(std::vector<std::string> args, const std::string& log_path,
                 const std::map<std::string, std::string>& env)
    : m_pid(spawn(args, log_path, log_path, env)) {}

Process::Process(Process&& o) noexcept : m_pid(o.m_pid) { o.m_pid = -1; }

Process& Process::operator=(Process&& o) noexcept {
  if (this != &o) {
    if (m_pid > 0) {
      ::kill(m_pid, SIGKILL);
      ::waitpid(m_pid, nullptr, 0);
    }
    m_pid = o.m_pid;
    o.m_pid = -1;
  }
  return *this;
}

Process::~Process() {
  if (m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    ::waitpid(m_pid, nullptr, 0);
  }
}

bool Process::running() {
  if (m_pid <= 0) return false;
  int status;
  if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
    m_pid = -1;
    return false;
  }
  return true;
}

void Process::signal(int sig) {
  if (m_pid > 0) ::kill(m_pid, sig);
}

int Process::wait(std::chrono::milliseconds timeout) {
  if (m_pid <= 0) return -1;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    int status;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_pid = -1;
      return status;
    }
    if (Clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling waitpid with a deadline
  }
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

bool feed_sse(std::string& buf, const char* d, size_t n, const std::function<bool(const SseBlock&)>& on_event) {
  buf.append(d, n);
  for (size_t end; (end = buf.find("\n\n")) != std::string::npos;) {
    std::istringstream in(buf.substr(0, end));
    buf.erase(0, end + 2);
    SseBlock block;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("id: ", 0) == 0) block.id = std::stoll(line.substr(4));
      if (line.rfind("data: ", 0) == 0) block.data = line.substr(6);
    }
    if (!on_event(block)) return false;
  }
  return true;
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval, bounded by the deadline
  }
  return pred();
}

std::string Response::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return "";
}

System::System(int workers, std::vector<std::string> daemon_args)
    : m_daemon_args(std::move(daemon_args)) {
  start_daemon();
  for (int i = 0; i < workers; ++i) start_worker();
}

System::~System() = default;

void System::start_daemon(std::vector<std::string> extra) {
  std::string url_path = m_dir.path + "/asyncopsd.url";
  ::unlink(url_path.c_str());
  std::vector<std::string> args = {ASYNCOPSD_BIN, "--data-dir", m_dir.path, "--listen", "127.0.0.1:0"};
  for (const auto& a : m_daemon_args) args.push_back(a);
  for (const auto& a : extra) args.push_back(a);
  m_daemon = Process(args, m_dir.path + "/daemon.log");
  std::string url;
  bool ready = eventually([&] {
    std::ifstream in(url_path);
    return in && std::getline(in, url) && url.rfind("http", 0) == 0;
  });
  if (!ready) throw std::runtime_error("asyncopsd did not start:\n" + logs());
  m_url = url;
}

void System::start_worker(std::vector<std::string> extra) {
  std::vector<std::string> args = {ASYNCOPS_WORKER_BIN, "--data-dir", m_dir.path, "--heartbeat-ms", "200"};
  args.insert(args.end(), extra.begin(), extra.end());
  m_workers.emplace_back(args, m_dir.path + "/worker.log");
}

void System::stop_daemon(int sig) {
  m_daemon.signal(sig);
  m_daemon.wait(std::chrono::seconds(20));
}

namespace {
Response convert(const httplib::Result& r) {
  Response out;
  if (!r) throw std::runtime_error("HTTP request failed: " + httplib::to_string(r.error()));
  out.status = r->status;
  for (const auto& [k, v] : r->headers) out.headers.emplace(k, v);
  out.body = r->body;
  out.json = nlohmann::json::parse(r->body, nullptr, false);
  return out;
}
}  // namespace

Response System::get(const std::string& path, const httplib::Headers& headers) {
  httplib::Client c(m_url);
  c.set_read_timeout(60);
  return convert(c.Get(path, headers));
}

Response System::send(const std::string& method, const std::string& path, const std::string& body,
                      const std::string& content_type, const httplib::Headers& headers) {
  httplib::Client c(m_url);
  c.set_read_timeout(60);
  if (method == "POST") return convert(c.Post(path, headers, body, content_type.c_str()));
  if (method == "PUT") return convert(c.Put(path, headers, body, content_type.c_str()));
  if (method == "PATCH") return convert(c.Patch(path, headers, body, content_type.c_str()));
  if (method == "DELETE") return convert(c.Delete(path, headers, body, content_type.c_str()));
  throw std::runtime_error("unsupported method " + method);
}

nlohmann::json System::create_user(const std::string& email, const std::string& name) {
  auto r = send("POST", "/users", nlohmann::json{{"email", email}, {"name", name}}.dump());
  if (r.status != 202) throw std::runtime_error("create_user got " + std::to_string(r.status) + ": " + r.body);
  return r.json;
}

nlohmann::json System::wait_terminal(const std::string& op_id, int seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(seconds);
  for (;;) {
    auto r = get("/operations/" + op_id + "?wait=5");
    if (r.status == 200 && r.json.value("done", false)) return r.json;
    if (Clock::now() > deadline) return r.json;
  }
}

std::string System::logs() const {
  return "--- daemon.log\n" + slurp(m_dir.path + "/daemon.log") + "--- worker.log\n" +
         slurp(m_dir.path + "/worker.log");
}

CliResult run_cli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                  std::chrono::milliseconds timeout) {
  TempDir tmp;
  std::vector<std::string> argv = {ASYNCOPS_CLI_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  pid_t pid = spawn(argv, tmp.path + "/out", tmp.path + "/err", env);
  auto deadline = Clock::now() + timeout;
  CliResult r;
  for (;;) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      r.exit_code = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  r.out = slurp(tmp.path + "/out");
  r.err = slurp(tmp.path + "/err");
  return r;
}

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

std::string wait_for_url_line(const std::string& log_path, std::chrono::milliseconds timeout) {
  std::string url;
  eventually(
      [&] {
        std::istringstream in(slurp(log_path));
        for (std::string line; std::getline(in, line);) {
          if (line.rfind("http://", 0) == 0) url = line;
        }
        return !url.empty();
      },
      timeout);
  return url;
}

std::string add_token(const std::string& dir, const std::string& principal, const std::string& role) {
  auto r = run_cli({"token", "add", "--principal", principal, "--role", role, "--data-dir", dir});
  if (r.exit_code != 0) throw std::runtime_error("token add failed: " + r.err);
  return last_line(r.out);
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int64_t metric(System& sys, const std::string& name) {
  auto body = sys.get("/metrics").body;
  auto pos = body.find("\n" + name + " ");
  return pos == std::string::npos ? -1 : std::stoll(body.substr(pos + name.size() + 2));
}

}  // namespace asyncops::it
