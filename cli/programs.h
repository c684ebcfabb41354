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

// The file of man page `page` (asyncops, asyncopsd, asyncops-worker,
// asyncops.conf, asyncops-routes) in section 1, 5 or 8: in the build tree's
// man/ (next to cli/), else the installed share/man next to bin/. "" if
// none.
std::string find_man_page(const std::string& page);

// asyncops help --man [PAGE]: shows the page with `man -l` (replacing this
// process). Returns only on failure, with the exit code to use.
int show_man_page(const std::string& page);

}  // namespace asyncops
