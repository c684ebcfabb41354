#pragma once
// The flag loop of the bench tools:
//   FlagReader flags(argc, argv, usage);
//   for (std::string a; flags.next(&a);) {
//     if (a == "--port") port = std::atoi(flags.value().c_str());
//     else flags.fail();
//   }
// An unknown flag (fail()) or a flag without its value prints usage and
// exits 2; so does a count (positive()) that is not a whole number >= 1.
#include <climits>
#include <cstdlib>
#include <string>

class FlagReader {
 public:
  FlagReader(int argc, char** argv, void (*usage)()) : m_argc(argc), m_argv(argv), m_usage(usage) {}

  // The next argument, or false after the last.
  bool next(std::string* flag) {
    if (m_i + 1 >= m_argc) return false;
    *flag = m_argv[++m_i];
    return true;
  }
  // The value that follows the current flag.
  std::string value() {
    if (m_i + 1 >= m_argc) fail();
    return m_argv[++m_i];
  }
  // The value that follows the current flag, a whole number from 1 to INT_MAX.
  int positive() {
    std::string v = value();
    char* end = nullptr;
    long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > INT_MAX) fail();
    return static_cast<int>(n);
  }
  [[noreturn]] void fail() {
    m_usage();
    std::exit(2);
  }

 private:
  const int m_argc;
  char** const m_argv;
  void (*const m_usage)();
  int m_i = 0;
};
