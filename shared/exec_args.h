#pragma once
// ExecArgs: an argv or envp for exec*, built before fork().
//
// Between fork() and exec() the child of a threaded process may call only
// async-signal-safe functions, and allocating memory is not one of them: if
// another thread held the allocator's lock at the fork, the child waits for
// it forever. glibc's malloc happens to survive that; the AddressSanitizer
// allocator of GCC 12 does not, and a test harness that built its argv in the
// child hung about one start in a few hundred (the daemon or a worker never
// ran). So every fork in the project builds its vectors first, with this.
#include <cstring>
#include <map>
#include <string>
#include <vector>

extern char** environ;

namespace asyncops {

class ExecArgs {
 public:
  explicit ExecArgs(std::vector<std::string> items) : m_items(std::move(items)) {
    m_ptrs.reserve(m_items.size() + 1);
    for (std::string& s : m_items) m_ptrs.push_back(s.data());
    m_ptrs.push_back(nullptr);
  }
  // The pointers point into m_items: neither copied nor moved.
  ExecArgs(const ExecArgs&) = delete;
  ExecArgs& operator=(const ExecArgs&) = delete;

  // The null-terminated array exec* takes.
  char* const* data() const { return m_ptrs.data(); }
  const char* first() const { return m_items.empty() ? "" : m_items.front().c_str(); }

  // This process's environment with `overrides` ("NAME" -> value) set.
  static std::vector<std::string> environment(const std::map<std::string, std::string>& overrides) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
      const char* eq = std::strchr(*e, '=');
      if (eq) env[std::string(*e, static_cast<size_t>(eq - *e))] = *e;
    }
    for (const auto& [k, v] : overrides) env[k] = k + "=" + v;
    std::vector<std::string> out;
    out.reserve(env.size());
    for (auto& [k, kv] : env) out.push_back(std::move(kv));
    return out;
  }

 private:
  std::vector<std::string> m_items;
  std::vector<char*> m_ptrs;
};

}  // namespace asyncops
