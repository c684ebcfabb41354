#pragma once
// The flag loop of the bench tools:
//   FlagReader flags(argc, argv, usage);
//   for (std::string a; flags.next(&a);) {
//     if (a == "--port") port = std::atoi(flags.value().c_str());
//     else flags.fail();
//   }
// An unknown flag (fail()) or a flag without its value prints usage and
// exits 2.
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
