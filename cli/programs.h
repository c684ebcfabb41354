#pragma once
// Finding and running the sibling programs asyncopsd and asyncops-worker.
#include <string>
#include <vector>

namespace asyncops {

// Next to this executable (installed, or the build tree's sibling folders),
// then $PATH. "" if not found.
std::string find_program(const std::string& name);

// Replaces this process with `name args...`. Returns only on failure, with
// the exit code to use (after printing one line on stderr).
int exec_program(const std::string& name, const std::vector<std::string>& args);

}  // namespace asyncops
