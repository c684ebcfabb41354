// stats and store info|ops|history|vacuum|export|check: the store file
// read directly through the store library (store/maintenance.h). Every
// command but vacuum opens it read-only, which is safe while the daemon
// runs (a WAL reader never blocks the writer).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/op_ref.h"
#include "shared/clock.h"
#include "store/maintenance.h"

namespace asyncops {
namespace {

// r's value; or, once r's error is printed, none (the command then exits
// with exit_code::error).
template <class T>
std::optional<T> value_or_print_error(Result<T> r) {
  if (!r) {
    print_error(r.error());
    return std::nullopt;
  }
  return std::move(r.value());
}

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
  nlohmann::json j;
  std::string source_label, source;
  if (g.daemon_known()) {
    // The daemon's own figures (issue 16); a daemon found only through a
    // URL file may be gone, and then the file answers.
    ApiClient client(g.url);
    ApiResponse r = client.get("/stats");
    if (r.reached && r.status == 200 && r.json.is_object()) {
      j = r.json;
      j["url"] = client.base_url();
      source_label = "daemon";
      source = client.base_url();
    } else if (g.url_named()) {
      print_error(r.describe());
      return r.reached ? exit_code::error : exit_code::unreachable;
    }
  }
  if (j.is_null()) {
    std::string path = store_file(g.data_dir(data_dir_flag));
    auto stats = value_or_print_error(store_stats(path, now_ms()));
    if (!stats) return exit_code::error;
    j = std::move(stats.value());
    source_label = "store";
    source = path;
  }
  Output out = g.out();
  if (out.format != OutputFormat::table) {
    out.value(j);
    return exit_code::ok;
  }
  auto num = [&](const nlohmann::json& v) { return v.is_number() ? v.get<int64_t>() : int64_t{0}; };
  std::vector<std::pair<std::string, std::string>> rows = {{source_label, source},
                                                           {"operations", std::to_string(num(j["total"]))},
                                                           {"backlog", std::to_string(num(j["backlog"]))}};
  for (const char* s : k_states) rows.push_back({"  " + out.state(s), std::to_string(num(j["counts"][s]))});
  if (!j["oldest_pending"].is_object()) {
    rows.push_back({"oldest pending", "-"});
  } else {
    rows.push_back({"oldest pending", j["oldest_pending"].value("id", "") + "  (" +
                                          relative_time(j["oldest_pending"]["created_at"]) + ")"});
  }
  rows.push_back({"created, last 1m", std::to_string(num(j["created_last_1m"])) + "  (" +
                                          fmt_rate(j.value("rate_1m_per_second", 0.0)) + "/s)"});
  rows.push_back({"created, last 5m", std::to_string(num(j["created_last_5m"])) + "  (" +
                                          fmt_rate(j.value("rate_5m_per_second", 0.0)) + "/s)"});
  if (j["rates"].is_object()) {
    const auto& r = j["rates"];
    std::string line;
    for (const char* k : {"accepted", "completed", "rejected", "failed"}) {
      line += (line.empty() ? "" : "  ") + std::string(k) + " " + fmt_rate(r.value(k, 0.0)) + "/s";
    }
    rows.push_back({"rates, last " + std::to_string(r.value("window_s", 0)) + "s", line});
  }
  print_kv(rows);
  if (j["by_command"].is_object() && !j["by_command"].empty()) {
    std::printf("\n%-24s %8s %8s %8s %8s %8s %8s %8s\n", "COMMAND", "TOTAL", "PENDING", "PROCESS", "COMPLETE",
                "REJECTED", "FAILED", "CANCELED");
    for (const auto& [name, c] : j["by_command"].items()) {
      std::printf("%-24s %8lld %8lld %8lld %8lld %8lld %8lld %8lld\n", name.c_str(),
                  static_cast<long long>(num(c["total"])), static_cast<long long>(num(c["pending"])),
                  static_cast<long long>(num(c["processing"])), static_cast<long long>(num(c["completed"])),
                  static_cast<long long>(num(c["rejected"])), static_cast<long long>(num(c["failed"])),
                  static_cast<long long>(num(c["canceled"])));
    }
  }
  return exit_code::ok;
}

int cmd_store_info(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto info = value_or_print_error(store_info(path));
  if (!info) return exit_code::error;
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
  if (!o.since.empty()) {
    auto since = parse_rfc3339(o.since);
    if (!since) {
      print_error("--since " + o.since + ": not an RFC 3339 time");
      return exit_code::usage;
    }
    f.since_ms = since.value();
  }
  auto ops = value_or_print_error(store_operations(path, f));
  if (!ops) return exit_code::error;
  nlohmann::json items = nlohmann::json::array();
  for (const auto& op : ops.value()) items.push_back(operation_json(op));
  Output out = g.out();
  if (out.format == OutputFormat::json) out.value({{"items", items}});
  else out.operations(items);
  return exit_code::ok;
}

namespace {

// The entries of op_ref from the daemon: exit code ok with *items and *id
// set, or an exit code after a one-line error. *fall_back is set instead
// when the daemon was only found (a URL file, `asyncops up`'s pointer) and
// cannot be reached: the file answers then.
int history_from_daemon(const GlobalOptions& g, const std::string& op_ref, std::string* id,
                        nlohmann::json* items, bool* fall_back) {
  ApiClient client(g.url);
  ResolvedOp op = resolve_op(client, op_ref);
  if (op.error.empty()) {
    ApiResponse r = client.get("/operations/" + url_encode(op.id) + "/history");
    if (r.reached && r.status == 200 && r.json.is_object() && r.json["items"].is_array()) {
      *id = op.id;
      *items = r.json["items"];
      return exit_code::ok;
    }
    if (!r.reached && !g.url_named()) {
      *fall_back = true;
      return exit_code::ok;
    }
    print_error(r.describe());
    return r.reached ? exit_code::error : exit_code::unreachable;
  }
  if (op.exit_code == exit_code::unreachable && !g.url_named()) {
    *fall_back = true;
    return exit_code::ok;
  }
  print_error(op.error);
  return op.exit_code;
}

}  // namespace

int cmd_store_history(const GlobalOptions& g, const std::string& data_dir_flag, const std::string& op_ref) {
  std::string op_id = op_ref_text(op_ref);  // also /operations/ID and its URL
  nlohmann::json items = nlohmann::json::array();
  bool from_file = !g.daemon_known();
  if (!from_file) {
    // Over HTTP when a daemon is known (issue 16): what the caller may see,
    // and ids by prefix.
    int rc = history_from_daemon(g, op_ref, &op_id, &items, &from_file);
    if (rc != exit_code::ok) return rc;
  }
  if (from_file) {
    std::string path = store_file(g.data_dir(data_dir_flag));
    auto history = value_or_print_error(store_history(path, op_id));
    if (!history) return exit_code::error;
    for (const HistoryEntry& h : history.value()) items.push_back(history_json(h));
  }
  Output out = g.out();
  if (out.format == OutputFormat::json) {
    out.value({{"id", op_id}, {"history", items}});
  } else if (out.format == OutputFormat::jsonl) {
    for (const auto& h : items) std::cout << h.dump() << "\n";
  } else {
    std::printf("%-8s %-26s %-18s %-11s %s\n", "SEQ", "AT", "KIND", "STATE", "CODE");
    for (const auto& h : items) {
      std::string st = h.value("state", "");
      std::printf("%-8lld %-26s %-18s %s%*s %s\n", static_cast<long long>(h.value("seq", int64_t{0})),
                  h.value("at", "").c_str(), h.value("kind", "").c_str(), out.state(st).c_str(),
                  static_cast<int>(st.size() < 11 ? 11 - st.size() : 0), "",
                  h["code"].is_string() ? h["code"].get<std::string>().c_str() : "");
    }
  }
  return exit_code::ok;
}

int cmd_store_vacuum(const GlobalOptions& g, const std::string& data_dir_flag) {
  auto vacuumed = value_or_print_error(vacuum_store(g.data_dir(data_dir_flag)));
  if (!vacuumed) return exit_code::error;
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
  auto checked = value_or_print_error(check_store_consistency(path));
  if (!checked) return exit_code::error;
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
