#include "shared/paths.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>

namespace asyncops {

std::string default_data_dir() {
  if (const char* d = std::getenv("ASYNCOPS_DATA_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/asyncops";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.local/share/asyncops";
}

Status make_dirs(const std::string& dir, unsigned mode) {
  if (dir.empty()) return Error{"empty directory name"};
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), mode) != 0 && errno != EEXIST) {
      return Error{"cannot create " + partial + ": " + std::strerror(errno)};
    }
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return Error{dir + " is not a directory"};
  // One made beforehand (mkdir -p, an installer) keeps its mode otherwise:
  // the data dir's mode is what protects its ipc:// sockets, so it is
  // narrowed to `mode` whenever it allows more. Parents are left alone.
  if ((st.st_mode & 07777 & ~mode) != 0 && ::chmod(dir.c_str(), st.st_mode & 07777 & mode) != 0) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", mode);
    return Error{"cannot narrow " + dir + " to mode " + octal + ": " + std::strerror(errno)};
  }
  return Status::success();
}

std::string default_commands_endpoint(const std::string& data_dir, const std::string& service) {
  return "ipc://" + data_dir + "/commands." + service + ".ipc";
}

std::string default_events_endpoint(const std::string& data_dir) {
  return "ipc://" + data_dir + "/events.ipc";
}

std::string default_control_endpoint(const std::string& data_dir) {
  return "ipc://" + data_dir + "/control.ipc";
}

std::string url_file(const std::string& data_dir) { return data_dir + "/asyncopsd.url"; }

}  // namespace asyncops
