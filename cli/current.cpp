#include "cli/current.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "shared/paths.h"

namespace asyncops {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : "";
}

}  // namespace

std::string current_pointer_path() {
  if (auto run = env("XDG_RUNTIME_DIR"); !run.empty()) return run + "/asyncops/current";
  if (auto state = env("XDG_STATE_HOME"); !state.empty()) return state + "/asyncops/current";
  return env("HOME") + "/.local/state/asyncops/current";
}

Status write_current_daemon(const CurrentDaemon& d) {
  std::string path = current_pointer_path();
  std::string dir = path.substr(0, path.rfind('/'));
  if (auto made = make_dirs(dir, 0700); !made) return made;
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"cannot write " + tmp};
  std::string text = "url=" + d.url + "\ndata_dir=" + d.data_dir + "\npid=" + std::to_string(d.pid) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error{"cannot write " + path};
  }
  return Status::success();
}

std::optional<CurrentDaemon> read_current_daemon() {
  std::ifstream in(current_pointer_path());
  if (!in) return std::nullopt;
  CurrentDaemon d;
  std::string line;
  for (int n = 0; n < 16 && std::getline(in, line); ++n) {
    if (line.size() > 4096) return std::nullopt;
    if (line.rfind("url=", 0) == 0) d.url = line.substr(4);
    else if (line.rfind("data_dir=", 0) == 0) d.data_dir = line.substr(9);
    else if (line.rfind("pid=", 0) == 0) d.pid = std::atol(line.c_str() + 4);
  }
  if (d.url.rfind("http://", 0) != 0 && d.url.rfind("https://", 0) != 0) return std::nullopt;
  return d;
}

void remove_current_daemon_if(const CurrentDaemon& d) {
  auto cur = read_current_daemon();
  if (cur && cur->url == d.url && cur->data_dir == d.data_dir && cur->pid == d.pid) {
    ::unlink(current_pointer_path().c_str());
  }
}

}  // namespace asyncops
