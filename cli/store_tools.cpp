// stats and store info|ops|history|vacuum|export|check: read the store file
// directly. Every command but vacuum opens it read-only, which is safe while
// the daemon runs (a WAL reader never blocks the writer).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/op_ref.h"
#include "daemon/store.h"
#include "shared/clock.h"

namespace asyncops {
namespace {

const char* k_states[] = {"pending", "processing", "completed", "rejected", "failed", "canceled"};

std::string text(SQLite::Statement& st, int i) {
  auto c = st.getColumn(i);
  return c.isNull() ? std::string() : c.getString();
}

int64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

// Opens DATA_DIR/asyncops.db read-only, or prints why not and returns null.
std::unique_ptr<SQLite::Database> open_readonly(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) {
    print_error("no store at " + path);
    return nullptr;
  }
  try {
    auto db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READONLY);
    db->setBusyTimeout(5000);
    return db;
  } catch (const std::exception& e) {
    print_error("cannot open " + path + " read-only: " + e.what());
    return nullptr;
  }
}

int64_t scalar(SQLite::Database& db, const std::string& sql, int64_t arg = INT64_MIN) {
  SQLite::Statement st(db, sql);
  if (arg != INT64_MIN) st.bind(1, static_cast<int64_t>(arg));
  if (!st.executeStep() || st.getColumn(0).isNull()) return 0;
  return st.getColumn(0).getInt64();
}

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

std::string store_file(const std::string& data_dir) { return data_dir + "/asyncops.db"; }

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
    if (!open_readonly(path)) return exit_code::error;
    try {
      auto reader = StoreReader::open(path);
      if (!reader) throw std::runtime_error(reader.error());
      j = stats_json(reader.value()->stats(now_ms(), std::nullopt));
    } catch (const std::exception& e) {
      print_error(std::string("cannot read ") + path + ": " + e.what());
      return exit_code::error;
    }
    j["store"] = path;
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
  auto db = open_readonly(path);
  if (!db) return exit_code::error;
  nlohmann::json j;
  try {
    SQLite::Transaction snapshot(*db);
    std::string version;
    SQLite::Statement v(*db, "SELECT value FROM meta WHERE key = 'schema_version'");
    if (v.executeStep()) version = text(v, 0);
    auto time_or_null = [](int64_t ms) { return ms > 0 ? nlohmann::json(format_rfc3339_ms(ms)) : nlohmann::json(); };
    j = {{"path", path},
         {"db_bytes", file_size(path)},
         {"wal_bytes", file_size(path + "-wal")},
         {"schema_version", version},
         {"operations", scalar(*db, "SELECT count(*) FROM operations")},
         {"history", scalar(*db, "SELECT count(*) FROM history")},
         {"resources", scalar(*db, "SELECT count(*) FROM resources")},
         {"idempotency_keys", scalar(*db, "SELECT count(*) FROM idempotency")},
         {"unfinished", scalar(*db, "SELECT count(*) FROM operations WHERE state IN ('pending','processing')")},
         {"oldest_created_at", time_or_null(scalar(*db, "SELECT min(created_at) FROM operations"))},
         {"newest_created_at", time_or_null(scalar(*db, "SELECT max(created_at) FROM operations"))}};
  } catch (const std::exception& e) {
    print_error(std::string("cannot read ") + path + ": " + e.what());
    return exit_code::error;
  }
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
  if (!open_readonly(path)) return exit_code::error;
  auto reader = StoreReader::open(path);
  if (!reader) {
    print_error(reader.error());
    return exit_code::error;
  }
  OperationFilter f;
  if (!o.state.empty()) f.state = parse_state(o.state);
  f.name = o.name;
  f.limit = o.limit;
  if (!o.since.empty() && !parse_rfc3339(o.since, &f.since_ms)) {
    print_error("--since " + o.since + ": not an RFC 3339 time");
    return exit_code::usage;
  }
  nlohmann::json items = nlohmann::json::array();
  try {
    for (const auto& op : reader.value()->list_operations(f)) items.push_back(operation_json(op));
  } catch (const std::exception& e) {
    print_error(std::string("cannot read ") + path + ": " + e.what());
    return exit_code::error;
  }
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
    if (!open_readonly(path)) return exit_code::error;
    try {
      auto reader = StoreReader::open(path);
      if (!reader) throw std::runtime_error(reader.error());
      if (!reader.value()->get_operation(op_id)) {
        print_error("no operation " + op_id + " in " + path);
        return exit_code::error;
      }
      for (const HistoryEntry& h : reader.value()->history(op_id)) items.push_back(history_json(h));
    } catch (const std::exception& e) {
      print_error(std::string("cannot read ") + path + ": " + e.what());
      return exit_code::error;
    }
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
  std::string dir = g.data_dir(data_dir_flag);
  std::string path = store_file(dir);
  if (::access(path.c_str(), F_OK) != 0) {
    print_error("no store at " + path);
    return exit_code::error;
  }
  // The daemon holds an exclusive flock on its pid file for its whole life.
  // Taking it here both proves the daemon is down and keeps one from
  // starting until VACUUM is done.
  std::string pid_path = dir + "/asyncopsd.pid";
  bool created = ::access(pid_path.c_str(), F_OK) != 0;
  int fd = ::open(pid_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    print_error("cannot open " + pid_path + ": " + std::strerror(errno));
    return exit_code::error;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    print_error("asyncopsd is running on " + dir + " (" + pid_path + " is locked); stop it before vacuum");
    return exit_code::error;
  }
  int64_t before = file_size(path) + file_size(path + "-wal");
  int rc = exit_code::ok;
  try {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.setBusyTimeout(5000);
    db.exec("VACUUM");
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (const std::exception& e) {
    print_error(std::string("vacuum failed: ") + e.what());
    rc = exit_code::error;
  }
  if (created) ::unlink(pid_path.c_str());
  ::close(fd);
  if (rc != exit_code::ok) return rc;
  int64_t after = file_size(path) + file_size(path + "-wal");
  Output out = g.out();
  if (out.format == OutputFormat::table) {
    std::cout << "vacuumed " << path << ": " << before << " -> " << after << " bytes\n";
  } else {
    out.value({{"path", path}, {"bytes_before", before}, {"bytes_after", after}});
  }
  return exit_code::ok;
}

int cmd_store_export(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto db = open_readonly(path);
  if (!db) return exit_code::error;
  bool progress = ::isatty(STDERR_FILENO) == 1;
  int64_t done = 0;
  try {
    SQLite::Transaction snapshot(*db);  // the export is one consistent snapshot
    int64_t total = scalar(*db, "SELECT count(*) FROM operations");
    SQLite::Statement ops(*db, std::string("SELECT ") + operation_columns() + " FROM operations ORDER BY seq");
    SQLite::Statement hist(*db, "SELECT seq, kind, state, code, message, at FROM history WHERE op_seq = ? ORDER BY seq");
    while (ops.executeStep()) {
      OperationRecord op = read_operation_row(ops);
      // A full backup: the request, params and worker too. retry_of on the
      // retrying operation links a retry; no retries list is repeated here.
      nlohmann::json j = operation_detail_json(op, {});
      j.erase("retries");
      nlohmann::json h = nlohmann::json::array();
      hist.reset();
      hist.bind(1, static_cast<int64_t>(op.seq));
      while (hist.executeStep()) {
        HistoryEntry e;
        e.seq = hist.getColumn(0).getInt64();
        e.kind = text(hist, 1);
        e.state = parse_state(text(hist, 2)).value_or(OpState::failed);
        e.code = text(hist, 3);
        e.message = text(hist, 4);
        e.at = hist.getColumn(5).getInt64();
        h.push_back(history_json(e));
      }
      j["history"] = std::move(h);
      std::cout << j.dump() << '\n';
      if (!std::cout) {
        print_error("cannot write the export (stdout closed)");
        return exit_code::error;
      }
      ++done;
      if (progress && (done % 1000 == 0 || done == total)) {
        std::cerr << "\rexported " << done << "/" << total << std::flush;
      }
    }
  } catch (const std::exception& e) {
    if (progress) std::cerr << "\n";
    print_error(std::string("export failed: ") + e.what());
    return exit_code::error;
  }
  std::cout.flush();
  if (progress) std::cerr << "\r\x1b[Kexported " << done << " operations\n";
  return exit_code::ok;
}

int cmd_store_check(const GlobalOptions& g, const std::string& data_dir_flag) {
  std::string path = store_file(g.data_dir(data_dir_flag));
  auto db = open_readonly(path);
  if (!db) return exit_code::error;
  std::vector<std::string> problems;
  try {
    SQLite::Transaction snapshot(*db);
    SQLite::Statement ic(*db, "PRAGMA integrity_check");
    while (ic.executeStep()) {
      std::string r = text(ic, 0);
      if (r != "ok") problems.push_back("integrity_check: " + r);
    }
    SQLite::Statement orphans(*db,
                              "SELECT h.seq, h.op_seq FROM history h LEFT JOIN operations o ON o.seq = h.op_seq "
                              "WHERE o.seq IS NULL ORDER BY h.seq");
    while (orphans.executeStep()) {
      problems.push_back("history " + std::to_string(orphans.getColumn(0).getInt64()) + ": no operation with seq " +
                         std::to_string(orphans.getColumn(1).getInt64()));
    }
    SQLite::Statement unaccepted(*db,
                                 "SELECT o.id FROM operations o WHERE NOT EXISTS (SELECT 1 FROM history h "
                                 "WHERE h.op_seq = o.seq AND h.kind = 'accepted') ORDER BY o.seq");
    while (unaccepted.executeStep()) problems.push_back("operation " + text(unaccepted, 0) + ": no accepted history entry");
    SQLite::Statement nocode(*db,
                             "SELECT id, state FROM operations WHERE state IN ('completed','rejected','failed','canceled') "
                             "AND (code IS NULL OR code = '') ORDER BY seq");
    while (nocode.executeStep()) {
      problems.push_back("operation " + text(nocode, 0) + ": " + text(nocode, 1) + " without a code");
    }
    // Per operation, history in seq order: "accepted" comes first and the
    // times never go backwards.
    SQLite::Statement order(*db,
                            "SELECT o.id, h.seq, h.kind, h.at FROM history h JOIN operations o ON o.seq = h.op_seq "
                            "ORDER BY h.op_seq, h.seq");
    std::string last_id;
    int64_t last_seq = 0, last_at = 0;
    while (order.executeStep()) {
      std::string id = text(order, 0), kind = text(order, 2);
      int64_t seq = order.getColumn(1).getInt64(), at = order.getColumn(3).getInt64();
      if (id != last_id) {
        if (kind != "accepted") problems.push_back("operation " + id + ": history starts with '" + kind + "', not 'accepted'");
      } else {
        if (seq <= last_seq) problems.push_back("operation " + id + ": history seq " + std::to_string(seq) + " does not increase");
        if (at < last_at) problems.push_back("operation " + id + ": history seq " + std::to_string(seq) + " is earlier than the one before");
      }
      last_id = id;
      last_seq = seq;
      last_at = at;
    }
  } catch (const std::exception& e) {
    print_error(std::string("cannot check ") + path + ": " + e.what());
    return exit_code::error;
  }
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
