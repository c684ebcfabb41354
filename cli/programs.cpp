#include "cli/programs.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cli/exit_codes.h"
#include "cli/output.h"

namespace asyncops {
namespace {

bool is_executable(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// The folder of this executable, or "".
std::string self_dir() {
  char self[PATH_MAX] = {0};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  std::string dir(self, static_cast<size_t>(n));
  return dir.substr(0, dir.rfind('/'));
}

}  // namespace

std::string find_program(const std::string& name) {
  char self[PATH_MAX] = {0};
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    std::string dir(self, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    for (const std::string& c : {dir + "/" + name, dir + "/../daemon/" + name, dir + "/../workers/" + name,
                                 dir + "/../sbin/" + name}) {
      if (is_executable(c)) return c;
    }
  }
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t colon = p.find(':', start);
    if (colon == std::string::npos) colon = p.size();
    std::string c = p.substr(start, colon - start) + "/" + name;
    if (is_executable(c)) return c;
    start = colon + 1;
  }
  return "";
}

int exec_program(const std::string& name, const std::vector<std::string>& args) {
  std::string bin = find_program(name);
  if (bin.empty()) {
    print_error("cannot find " + name + " next to asyncops or on PATH");
    return exit_code::error;
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(bin.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execv(bin.c_str(), argv.data());
  print_error("cannot run " + bin + ": " + std::strerror(errno));
  return exit_code::error;
}

std::string find_man_page(const std::string& page) {
  std::string dir = self_dir();
  if (dir.empty() || page.empty() || page.find('/') != std::string::npos) return "";
  for (const std::string& root : {dir + "/../man", dir + "/../share/man"}) {
    for (const char* section : {"1", "8", "5"}) {
      std::string file = root + "/man" + section + "/" + page + "." + section;
      struct stat st {};
      if (::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return file;
    }
  }
  return "";
}

int show_man_page(const std::string& page) {
  std::string file = find_man_page(page);
  if (file.empty()) {
    print_error("no man page '" + page + "' next to this asyncops (pages: asyncops, asyncopsd, asyncops-worker, "
                "asyncops.conf, asyncops-routes)");
    return exit_code::usage;
  }
  std::string man = find_program("man");
  if (man.empty()) {
    print_error("man is not installed; the page is " + file);
    return exit_code::error;
  }
  const char* argv[] = {man.c_str(), "-l", file.c_str(), nullptr};
  ::execv(man.c_str(), const_cast<char**>(argv));
  print_error("cannot run " + man + ": " + std::strerror(errno));
  return exit_code::error;
}

}  // namespace asyncops
