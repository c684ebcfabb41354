#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "shared/paths.h"

using namespace asyncops;

namespace {
unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}
}  // namespace

TEST_CASE("make_dirs makes a new data dir 0700", "[paths]") {
  char tmpl[] = "/tmp/aou-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  std::string dir = std::string(tmpl) + "/a/b";
  CHECK(make_dirs(dir, 0700).ok());
  CHECK(mode_of(dir) == 0700);
  std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
}

TEST_CASE("make_dirs narrows a data dir made beforehand at 0755 to 0700", "[paths]") {
  char tmpl[] = "/tmp/aou-XXXXXX";
  REQUIRE(::mkdtemp(tmpl));
  std::string parent = tmpl;
  ::chmod(parent.c_str(), 0755);
  std::string dir = parent + "/data";
  REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
  ::chmod(dir.c_str(), 0755);  // whatever the umask
  CHECK(make_dirs(dir, 0700).ok());
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(parent) == 0755);  // parents are left as they are
  // A narrower mode stays.
  ::chmod(dir.c_str(), 0500);
  CHECK(make_dirs(dir, 0700).ok());
  CHECK(mode_of(dir) == 0500);
  ::chmod(dir.c_str(), 0700);
  std::system(("rm -rf '" + parent + "'").c_str());
}
