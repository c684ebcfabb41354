// version and config: what this CLI is and how it is configured.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/programs.h"
#include "shared/paths.h"
#include "shared/exec_args.h"

namespace asyncops {
namespace {

const char* k_version = "0.1.0";

// Runs bin with args and returns its stdout; exit status in *status.
bool capture(const std::string& bin, const std::vector<std::string>& args, std::string* out, int* status) {
  std::vector<std::string> all = {bin};
  all.insert(all.end(), args.begin(), args.end());
  ExecArgs argv(std::move(all));  // before fork: the child may not allocate (shared/exec_args.h)
  int fds[2];
  if (::pipe(fds) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execv(argv.first(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, status, 0);
  return true;
}

void print_settings(const Output& out, const nlohmann::json& j) {
  if (out.format != OutputFormat::table) {
    out.value(j);
    return;
  }
  std::printf("config file: %s%s\n\n", j["config_file"].get<std::string>().c_str(),
              j["config_file_found"].get<bool>() ? "" : " (not found; defaults apply)");
  size_t w = 3;
  for (const auto& s : j["settings"]) w = std::max(w, s["key"].get<std::string>().size());
  std::printf("%-*s  %-8s  %s\n", static_cast<int>(w), "KEY", "SOURCE", "VALUE");
  for (const auto& s : j["settings"]) {
    std::printf("%-*s  %-8s  %s\n", static_cast<int>(w), s["key"].get<std::string>().c_str(),
                s["source"].get<std::string>().c_str(), s["value"].get<std::string>().c_str());
  }
  std::fflush(stdout);
}

}  // namespace

std::string GlobalOptions::data_dir(const std::string& flag) const {
  if (!flag.empty()) return flag;
  if (!global_data_dir.empty()) return global_data_dir;
  if (const char* d = std::getenv("ASYNCOPS_DATA_DIR"); d && *d) return d;
  if (!file_data_dir.empty()) return file_data_dir;
  if (!current_data_dir.empty()) return current_data_dir;
  return default_data_dir();
}

int cmd_version(const GlobalOptions& g) {
  Output out = g.out();
  if (out.format == OutputFormat::table) std::cout << "asyncops " << k_version << "\n";
  else out.value({{"version", k_version}});
  return exit_code::ok;
}

int cmd_config(const GlobalOptions& g, bool daemon) {
  Output out = g.out();
  if (!daemon) {
    nlohmann::json items = nlohmann::json::array();
    for (const auto& s : g.settings) items.push_back({{"key", s.key}, {"value", s.value}, {"source", s.source}});
    print_settings(out, {{"program", "asyncops"},
                         {"config_file", g.config_path},
                         {"config_file_found", g.config_found},
                         {"settings", items}});
    return exit_code::ok;
  }
  // What asyncopsd would use: ask it (same file, same environment).
  std::string bin = find_program("asyncopsd");
  if (bin.empty()) {
    print_error("cannot find asyncopsd next to asyncops or on PATH");
    return exit_code::error;
  }
  std::string text;
  int status = 0;
  std::vector<std::string> args = {"--print-config"};
  if (g.config_found) args = {"--config", g.config_path, "--print-config"};
  if (!capture(bin, args, &text, &status)) {
    print_error("cannot run " + bin);
    return exit_code::error;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return exit_code::error;  // it printed why
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    print_error(bin + " --print-config printed no JSON");
    return exit_code::error;
  }
  j["program"] = "asyncopsd";
  print_settings(out, j);
  return exit_code::ok;
}

}  // namespace asyncops
