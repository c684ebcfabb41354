// stats and store info|ops|history|vacuum|export|check: the store file
// read directly through the store library (store/maintenance.h). Every
// command but vacuum opens it read-only, which is safe while the daemon
// runs (a WAL reader never blocks the writer).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/op_ref.h"
#include "shared/clock.h"
#include "store/maintenance.h"

namespace asyncops {
namespace {

const char* k_states[] = {"pending", "processing", "completed", "rejected", "failed", "canceled"};

void print_kv(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t w = 0;
  for (const auto& r : rows) w = std::max(w, r.first.size());
  for (const auto& [k, v] : rows) std::printf("%-*s  %s\n", static_cast<int>(w), k.c_str(), v.c_str());
  std::fflush(stdout);
}

std::string fmt_rate(double r) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", r);
  return buf;
}

}  // namespace

int cmd_stats(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto stats = store_stats(path, now_ms());
  if (!stats) {
    print_error(stats.error());
    return exit_code::error;
  }
  nlohmann::json j = std::move(stats.value());
  Output out = g.out();
  if (out.format != OutputFormat::table) {
    out.value(j);
    return exit_code::ok;
  }
  std::vector<std::pair<std::string, std::string>> rows = {{"store", path},
                                                           {"operations", std::to_string(j["total"].get<int64_t>())},
                                                           {"backlog", std::to_string(j["backlog"].get<int64_t>())}};
  for (const char* s : k_states) rows.push_back({"  " + out.state(s), std::to_string(j["by_state"][s].get<int64_t>())});
  if (j["oldest_pending"].is_null()) {
    rows.push_back({"oldest pending", "-"});
  } else {
    rows.push_back({"oldest pending", j["oldest_pending"]["id"].get<std::string>() + "  (" +
                                          relative_time(j["oldest_pending"]["created_at"]) + ")"});
  }
  rows.push_back({"created, last 1m", std::to_string(j["created_last_1m"].get<int64_t>()) + "  (" +
                                          fmt_rate(j["rate_1m_per_second"]) + "/s)"});
  rows.push_back({"created, last 5m", std::to_string(j["created_last_5m"].get<int64_t>()) + "  (" +
                                          fmt_rate(j["rate_5m_per_second"]) + "/s)"});
  print_kv(rows);
  if (!j["by_command"].empty()) {
    std::printf("\n%-24s %8s %8s %8s %8s %8s %8s %8s\n", "COMMAND", "TOTAL", "PENDING", "PROCESS", "COMPLETE",
                "REJECTED", "FAILED", "CANCELED");
    for (const auto& [name, c] : j["by_command"].items()) {
      std::printf("%-24s %8lld %8lld %8lld %8lld %8lld %8lld %8lld\n", name.c_str(),
                  static_cast<long long>(c["total"].get<int64_t>()), static_cast<long long>(c["pending"].get<int64_t>()),
                  static_cast<long long>(c["processing"].get<int64_t>()),
                  static_cast<long long>(c["completed"].get<int64_t>()),
                  static_cast<long long>(c["rejected"].get<int64_t>()), static_cast<long long>(c["failed"].get<int64_t>()),
                  static_cast<long long>(c["canceled"].get<int64_t>()));
    }
  }
  return exit_code::ok;
}

int cmd_store_info(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto info = store_info(path);
  if (!info) {
    print_error(info.error());
    return exit_code::error;
  }
  nlohmann::json j = std::move(info.value());
  Output out = g.out();
  if (out.format != OutputFormat::table) {
    out.value(j);
    return exit_code::ok;
  }
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [k, v] : j.items()) rows.push_back({k, v.is_string() ? v.get<std::string>() : v.is_null() ? "-" : v.dump()});
  print_kv(rows);
  return exit_code::ok;
}

int cmd_store_ops(const GlobalOptions& g, const std::string& data_dir_flag, const ListOptions& o) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  OperationFilter f;
  if (!o.state.empty()) f.state = parse_state(o.state);
  f.name = o.name;
  f.limit = o.limit;
  if (!o.since.empty() && !parse_rfc3339(o.since, &f.since_ms)) {
    print_error("--since " + o.since + ": not an RFC 3339 time");
    return exit_code::usage;
  }
  auto ops = store_operations(path, f);
  if (!ops) {
    print_error(ops.error());
    return exit_code::error;
  }
  nlohmann::json items = nlohmann::json::array();
  for (const auto& op : ops.value()) items.push_back(operation_json(op));
  Output out = g.out();
  if (out.format == OutputFormat::json) out.value({{"items", items}});
  else out.operations(items);
  return exit_code::ok;
}

int cmd_store_history(const GlobalOptions& g, const std::string& data_dir_flag, const std::string& op_ref) {
  std::string op_id = op_ref_text(op_ref);  // also /operations/ID and its URL
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto history = store_history(path, op_id);
  if (!history) {
    print_error(history.error());
    return exit_code::error;
  }
  nlohmann::json items = nlohmann::json::array();
  for (const HistoryEntry& h : history.value()) items.push_back(history_json(h));
  Output out = g.out();
  if (out.format == OutputFormat::json) {
    out.value({{"id", op_id}, {"history", items}});
  } else if (out.format == OutputFormat::jsonl) {
    for (const auto& h : items) std::cout << h.dump() << "\n";
  } else {
    std::printf("%-8s %-26s %-18s %-11s %s\n", "SEQ", "AT", "KIND", "STATE", "CODE");
    for (const auto& h : items) {
      std::string st = h["state"];
      std::printf("%-8lld %-26s %-18s %s%*s %s\n", static_cast<long long>(h["seq"].get<int64_t>()),
                  h["at"].get<std::string>().c_str(), h["kind"].get<std::string>().c_str(), out.state(st).c_str(),
                  static_cast<int>(11 - st.size()), "", h["code"].is_string() ? h["code"].get<std::string>().c_str() : "");
    }
  }
  return exit_code::ok;
}

int cmd_store_vacuum(const GlobalOptions& g, const std::string& data_dir_flag) {
  auto vacuumed = vacuum_store(g.data_dir(data_dir_flag));
  if (!vacuumed) {
    print_error(vacuumed.error());
    return exit_code::error;
  }
  const VacuumResult& r = vacuumed.value();
  Output out = g.out();
  if (out.format == OutputFormat::table) {
    std::cout << "vacuumed " << r.path << ": " << r.bytes_before << " -> " << r.bytes_after << " bytes\n";
  } else {
    out.value({{"path", r.path}, {"bytes_before", r.bytes_before}, {"bytes_after", r.bytes_after}});
  }
  return exit_code::ok;
}

int cmd_store_export(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  bool progress = ::isatty(STDERR_FILENO) == 1;
  auto exported = export_store(path, [progress](const nlohmann::json& op, int64_t done, int64_t total) -> Status {
    std::cout << op.dump() << '\n';
    if (!std::cout) return Error{"cannot write the export (stdout closed)"};
    if (progress && (done % 1000 == 0 || done == total)) {
      std::cerr << "\rexported " << done << "/" << total << std::flush;
    }
    return Status::success();
  });
  if (!exported) {
    if (progress) std::cerr << "\n";
    print_error(exported.error());
    return exit_code::error;
  }
  std::cout.flush();
  if (progress) std::cerr << "\r\x1b[Kexported " << exported.value() << " operations\n";
  return exit_code::ok;
}

int cmd_store_check(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto checked = check_store_consistency(path);
  if (!checked) {
    print_error(checked.error());
    return exit_code::error;
  }
  const std::vector<std::string>& problems = checked.value();
  for (const auto& p : problems) print_error(p);
  Output out = g.out();
  if (out.format == OutputFormat::table) {
    std::cout << (problems.empty() ? "ok" : std::to_string(problems.size()) + " problem(s)") << "\n";
  } else {
    out.value({{"path", path}, {"ok", problems.empty()}, {"problems", problems}});
  }
  return problems.empty() ? exit_code::ok : exit_code::error;
}

}  // namespace asyncops
