// workers, store prune: operator commands.
#include <unistd.h>

#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "shared/clock.h"
#include "shared/paths.h"
#include "store/maintenance.h"

namespace asyncops {

int cmd_workers(const GlobalOptions& g) {
  ApiClient client(g.url);
  ApiResponse r = client.get("/workers");
  if (!r.reached) {
    print_error(r.describe());
    return exit_code::unreachable;
  }
  if (r.status != 200) {
    print_error(r.describe());
    return exit_code::error;
  }
  Output out = g.out();
  if (out.format != OutputFormat::table) {
    out.list(r.json["items"]);
  } else {
    std::printf("%-40s %-10s %-6s %-16s %-8s %-9s %s\n", "ID", "SERVICE", "KIND", "HOST", "PID", "IN-FLIGHT",
                "LAST HEARTBEAT");
    for (const auto& w : r.json["items"]) {
      std::string kind = w.value("kind", "");
      std::printf("%-40s %-10s %-6s %-16s %-8lld %-9lld %s\n", w.value("id", "").c_str(), w.value("service", "").c_str(),
                  kind.empty() ? "-" : kind.c_str(),
                  w.value("host", "").c_str(), static_cast<long long>(w.value("pid", 0)),
                  static_cast<long long>(w.value("in_flight", 0)),
                  (std::to_string(w.value("age_ms", 0)) + "ms ago").c_str());
    }
  }
  return exit_code::ok;
}

int cmd_store_prune(const GlobalOptions& g, const std::string& data_dir, std::chrono::milliseconds older_than) {
  std::string path = store_file(g.data_dir(data_dir));
  bool progress = ::isatty(STDERR_FILENO) == 1;
  // Small batches, each its own transaction, so a running daemon's writes
  // interleave instead of waiting.
  auto pruned = prune_store(path, now_ms() - older_than.count(), 1000, [progress](int64_t total) {
    if (progress) std::cerr << "\rpruned " << total << std::flush;
  });
  if (!pruned) {
    if (progress) std::cerr << "\n";
    print_error(pruned.error());
    return exit_code::error;
  }
  int64_t total = pruned.value();
  if (progress) std::cerr << "\r\x1b[K";
  Output out = g.out();
  if (out.format == OutputFormat::table) std::cout << "pruned " << total << " operations\n";
  else out.value({{"pruned", total}});
  return exit_code::ok;
}

}  // namespace asyncops
