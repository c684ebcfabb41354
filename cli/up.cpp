// asyncops up: runs asyncopsd and its workers as child processes, prints
// the URL once ready, restarts a child that dies, and stops everything
// cleanly on Ctrl-C or SIGTERM. The workers are N of --service (the
// built-in users by default), or, when the config file declares services
// ([service.NAME] sections, issue 13), each declared service's own.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/current.h"
#include "cli/exit_codes.h"
#include "cli/programs.h"
#include "cli/restart_policy.h"
#include "daemon/routes.h"
#include "shared/config.h"
#include "shared/exec_args.h"
#include "shared/paths.h"
#include "shared/service_config.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;

pid_t spawn(const std::vector<std::string>& args) {
  ExecArgs argv(args);  // before fork: the child may not allocate (shared/exec_args.h)
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  // Child: die with the supervisor, and take signals normally again.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  // `asyncops up` prints only the URL on stdout, for scripts; the children's
  // own output goes to stderr with their logs.
  ::dup2(STDERR_FILENO, STDOUT_FILENO);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execv(argv.first(), argv.data());
  // Not fprintf (it may allocate): the message in a fixed buffer, one write.
  char msg[512];
  int n = std::snprintf(msg, sizeof msg, "asyncops: cannot run %s: %s\n", argv.first(), std::strerror(errno));
  if (n > 0) (void)!::write(STDERR_FILENO, msg, std::min(static_cast<size_t>(n), sizeof msg - 1));
  ::_exit(127);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

struct Child {
  std::string role;  // "asyncopsd" or "worker N"
  ChildKind kind = ChildKind::worker;
  std::vector<std::string> args;
  pid_t pid = -1;
  Clock::time_point started{};
  Clock::time_point restart_at{};
  int quick_deaths = 0;  // see cli/restart_policy.h
};

// Which version of a file is at path: the daemon writes its URL file by
// rename, so a new file has a new inode (or at least a new mtime).
struct FileVersion {
  bool exists = false;
  ino_t inode = 0;
  timespec mtime{};
  bool operator==(const FileVersion& o) const {
    return exists == o.exists && inode == o.inode && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

FileVersion file_version(const std::string& path) {
  struct stat st {};
  FileVersion v;
  if (::stat(path.c_str(), &st) != 0) return v;
  v.exists = true;
  v.inode = st.st_ino;
  v.mtime = st.st_mtim;
  return v;
}

// The services declared in the config, checked against the route table the
// daemon will load: --routes, else [daemon] routes, else the embedded one.
Result<std::vector<ServiceConfig>> declared_services(const ConfigFile& file, const std::string& routes_flag) {
  auto declared = load_service_configs(file);
  if (!declared || declared->empty()) return declared;
  std::string routes_path = routes_flag;
  if (const auto* daemon = file.section("daemon"); daemon && routes_path.empty()) {
    for (const auto& e : *daemon) {
      if (e.key == "routes") routes_path = e.value;
    }
  }
  if (const char* env = std::getenv("ASYNCOPS_ROUTES"); env && *env && routes_flag.empty()) routes_path = env;
  auto routes = routes_path.empty() ? RouteTable::load_json(RouteTable::default_json())
                                    : RouteTable::load_file(routes_path);
  if (!routes) return Error{routes.error()};
  if (auto match = check_services_match(declared.value(), routes->services(), file.path); !match.ok()) {
    return Error{match.error()};
  }
  return declared;
}

}  // namespace

int cmd_up(const GlobalOptions& g, const UpOptions& o) {
  std::string data_dir = g.data_dir(o.data_dir);
  if (o.workers < 0) {
    print_error("--workers must be 0 or more");
    return exit_code::usage;
  }
  std::string daemon_bin = find_program("asyncopsd");
  std::string worker_bin = find_program("asyncops-worker");
  if (daemon_bin.empty() || worker_bin.empty()) {
    print_error(std::string("cannot find ") + (daemon_bin.empty() ? "asyncopsd" : "asyncops-worker") +
                " next to asyncops or on PATH");
    return exit_code::error;
  }
  auto file = load_config(g.config_path, false);
  if (!file) {
    print_error(file.error());
    return exit_code::usage;
  }
  auto declared = declared_services(file.value(), o.routes);
  if (!declared) {
    print_error(declared.error());
    return exit_code::usage;
  }
  if (auto made = make_dirs(data_dir, 0700); !made) {
    print_error(made.error());
    return exit_code::error;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGCHLD);
  sigprocmask(SIG_BLOCK, &signals, nullptr);

  auto start_time = Clock::now();
  // The URL file may be a stale one from a killed daemon, or that of a
  // daemon already running on this data dir (ours will then refuse to
  // start): never delete it, only wait for our daemon to write a new one.
  FileVersion old_url = file_version(url_file(data_dir));
  Child daemon;
  daemon.role = "asyncopsd";
  daemon.kind = ChildKind::daemon;
  daemon.args = {daemon_bin, "--data-dir", data_dir, "--listen", o.listen, "--sync", o.sync};
  if (!o.routes.empty()) {
    daemon.args.push_back("--routes");
    daemon.args.push_back(o.routes);
  }
  // The children read the same file as this process, whichever way it was found.
  std::vector<std::string> config_args;
  if (file->found) config_args = {"--config", file->path};
  daemon.args.insert(daemon.args.end(), config_args.begin(), config_args.end());
  std::vector<Child> children;
  children.push_back(daemon);
  int worker_count = 0;
  auto add_worker = [&](const std::string& service, const std::string& role) {
    Child w;
    w.role = role;
    w.args = {worker_bin, "--data-dir", data_dir, "--service", service};
    w.args.insert(w.args.end(), config_args.begin(), config_args.end());
    children.push_back(w);
    ++worker_count;
  };
  if (declared->empty()) {
    for (int i = 0; i < o.workers; ++i) add_worker(o.service, "worker " + std::to_string(i + 1));
  } else {
    for (const ServiceConfig& s : declared.value()) {
      for (int i = 0; i < s.workers; ++i) add_worker(s.name, s.name + " worker " + std::to_string(i + 1));
    }
  }
  auto launch = [](Child& c) {
    c.pid = spawn(c.args);
    c.started = Clock::now();
  };
  auto stop_all = [&](int code) {
    for (auto& c : children) {
      if (c.pid > 0) ::kill(c.pid, SIGTERM);
    }
    auto deadline = Clock::now() + std::chrono::seconds(10);
    for (auto& c : children) {
      while (c.pid > 0) {
        int status;
        pid_t r = ::waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid || r < 0) {
          c.pid = -1;
          break;
        }
        if (Clock::now() > deadline) {
          ::kill(c.pid, SIGKILL);
          ::waitpid(c.pid, &status, 0);
          c.pid = -1;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return code;
  };

  launch(children[0]);
  // Ready: the daemon writes its URL file once it listens; then /healthz.
  std::string url;
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (url.empty()) {
    int status;
    if (::waitpid(children[0].pid, &status, WNOHANG) == children[0].pid) {
      children[0].pid = -1;
      print_error("asyncopsd " + describe_status(status) + " before it was ready (see its log above)");
      return stop_all(exit_code::error);
    }
    std::ifstream in(url_file(data_dir));
    std::string line;
    if (!(file_version(url_file(data_dir)) == old_url) && in && std::getline(in, line) &&
        line.rfind("http", 0) == 0) {
      ApiClient probe(line);
      if (probe.get("/healthz", 2).status == 200) url = line;
    }
    if (url.empty()) {
      if (Clock::now() > deadline) {
        print_error("asyncopsd was not ready within 30s");
        return stop_all(exit_code::error);
      }
      timespec ts{0, 20 * 1000 * 1000};
      siginfo_t info;
      int sig = sigtimedwait(&signals, &info, &ts);
      if (sig == SIGINT || sig == SIGTERM) return stop_all(exit_code::ok);
    }
  }
  for (size_t i = 1; i < children.size(); ++i) launch(children[i]);
  double ready_s = std::chrono::duration<double>(Clock::now() - start_time).count();
  std::cout << url << std::endl;
  // Other shells find this daemon through the per-user pointer (issue 16).
  CurrentDaemon self{url, data_dir, static_cast<long>(::getpid())};
  if (auto wrote = write_current_daemon(self); !wrote) print_error(wrote.error() + "; other shells need --url " + url);
  std::cerr << "asyncops: up in " << static_cast<int>(ready_s * 1000) << " ms; data dir " << data_dir
            << ", " << worker_count << " worker" << (worker_count == 1 ? "" : "s")
            << "; Ctrl-C stops everything" << std::endl;

  for (;;) {
    // Wake in time for a pending restart (a 100 ms delay must not become 250).
    bool restart_pending = false;
    for (const auto& c : children) restart_pending = restart_pending || c.pid < 0;
    timespec ts{0, (restart_pending ? 20 : 250) * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &ts);
    if (sig == SIGINT || sig == SIGTERM) {
      std::cerr << "asyncops: stopping" << std::endl;
      remove_current_daemon_if(self);
      return stop_all(exit_code::ok);
    }
    // Reap whatever exited, and schedule its restart (cli/restart_policy.h).
    for (;;) {
      int status;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (auto& c : children) {
        if (c.pid != pid) continue;
        c.pid = -1;
        ChildDeath death;
        death.kind = c.kind;
        death.ran_for = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - c.started);
        death.exited_with_error = WIFEXITED(status) && WEXITSTATUS(status) != 0;
        death.quick_deaths = c.quick_deaths;
        RestartPlan plan = plan_restart(death);
        c.quick_deaths = plan.quick_deaths;
        c.restart_at = Clock::now() + plan.delay;
        std::cerr << "asyncops: " << c.role << " " << describe_status(status) << "; restarting in "
                  << plan.delay.count() << " ms" << std::endl;
      }
    }
    for (auto& c : children) {
      if (c.pid < 0 && Clock::now() >= c.restart_at) launch(c);
    }
  }
}

}  // namespace asyncops
