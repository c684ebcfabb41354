// workers, store prune: operator commands.
#include <unistd.h>

#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "daemon/store.h"
#include "shared/clock.h"
#include "shared/paths.h"

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
  std::string dir = g.data_dir(data_dir);
  std::string path = dir + "/asyncops.db";
  if (::access(path.c_str(), F_OK) != 0) {
    print_error("no store at " + path);
    return exit_code::error;
  }
  auto writer = StoreWriter::open(path, SyncMode::normal);
  if (!writer) {
    print_error(writer.error());
    return exit_code::error;
  }
  int64_t before = now_ms() - older_than.count();
  int64_t total = 0;
  bool progress = ::isatty(STDERR_FILENO) == 1;
  try {
    // Small batches, each its own transaction, so a running daemon's writes
    // interleave instead of waiting.
    for (;;) {
      writer.value()->begin();
      int n = writer.value()->prune(before, 1000);
      writer.value()->commit();
      total += n;
      if (progress) std::cerr << "\rpruned " << total << std::flush;
      if (n < 1000) break;
    }
  } catch (const std::exception& e) {
    writer.value()->rollback();
    if (progress) std::cerr << "\n";
    print_error(std::string("prune failed: ") + e.what());
    return exit_code::error;
  }
  if (progress) std::cerr << "\r\x1b[K";
  Output out = g.out();
  if (out.format == OutputFormat::table) std::cout << "pruned " << total << " operations\n";
  else out.value({{"pruned", total}});
  return exit_code::ok;
}

}  // namespace asyncops
