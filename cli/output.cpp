#include "cli/output.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "cli/exit_codes.h"
#include "shared/clock.h"

namespace asyncops {
namespace {

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

size_t display_width(const std::string& s) {
  size_t n = 0, i = 0;
  while (i < s.size()) {
    if (s[i] == '\x1b') {  // skip ANSI colour sequences
      while (i < s.size() && s[i] != 'm') ++i;
      ++i;
      continue;
    }
    n += (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
    ++i;
  }
  return n;
}

}  // namespace

Output Output::resolve(const std::string& flag, bool json_alias) {
  Output o;
  bool tty = ::isatty(STDOUT_FILENO) == 1;
  if (json_alias || flag == "json") o.format = OutputFormat::json;
  else if (flag == "jsonl") o.format = OutputFormat::jsonl;
  else o.format = OutputFormat::table;
  const char* no_color = std::getenv("NO_COLOR");
  o.color = tty && !(no_color && *no_color) && o.format == OutputFormat::table;
  if (tty) {
    o.short_ids = true;
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) o.width = ws.ws_col;
    else if (const char* cols = std::getenv("COLUMNS"); cols && std::atoi(cols) > 0) o.width = std::atoi(cols);
  }
  return o;
}

std::string Output::state(const std::string& s) const {
  if (!color) return s;
  const char* c = "0";
  if (s == "completed") c = "32";
  else if (s == "rejected") c = "33";
  else if (s == "failed") c = "31";
  else if (s == "canceled") c = "35";
  else if (s == "processing") c = "36";
  else if (s == "pending") c = "2";
  return std::string("\x1b[") + c + "m" + s + "\x1b[0m";
}

void Output::value(const nlohmann::json& v) const {
  std::cout << v.dump(format == OutputFormat::json ? 2 : -1) << "\n";
}

void Output::list(const nlohmann::json& items) const {
  if (format == OutputFormat::jsonl) {
    for (const auto& item : items) std::cout << item.dump() << "\n";
  } else {
    value({{"items", items}});
  }
}

void Output::operation(const nlohmann::json& op) const {
  if (format != OutputFormat::table) {
    value(op);
    return;
  }
  std::string code = str(op, "code");
  std::string st = state(str(op, "state")) + (code.empty() ? "" : " (" + code + ")");
  std::vector<std::pair<std::string, std::string>> rows = {
      {"id", str(op, "id")},
      {"name", str(op, "name")},
      {"state", st},
      {"message", str(op, "message")},
      {"resource", str(op, "resource")},
      {"origin", str(op, "origin")},
      {"created", str(op, "created_at") + "  (" + relative_time(str(op, "created_at")) + ")"},
      {"updated", str(op, "updated_at") + "  (" + relative_time(str(op, "updated_at")) + ")"}};
  for (const auto& [k, v] : rows) {
    if (v.empty()) continue;
    std::printf("%-9s %s\n", k.c_str(), v.c_str());
  }
  std::fflush(stdout);
}

void Output::operations(const nlohmann::json& items) const {
  if (format == OutputFormat::json) {
    value(items);
    return;
  }
  if (format == OutputFormat::jsonl) {
    for (const auto& op : items) std::cout << op.dump() << "\n";
    return;
  }
  for (const auto& line : operations_table(items, *this)) std::cout << line << "\n";
}

size_t unique_prefix_length(const std::vector<std::string>& ids, size_t min_len) {
  size_t len = min_len;
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) {
    const std::string& a = sorted[i - 1];
    const std::string& b = sorted[i];
    if (a == b) continue;
    size_t common = 0;
    while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
    len = std::max(len, common + 1);
  }
  // Never end a prefix on the dash: 0190c3e2- reads as a typo.
  for (const auto& id : ids) {
    if (len < id.size() && id[len - 1] == '-') {
      ++len;
      break;
    }
  }
  return len;
}

std::vector<std::string> operations_table(const nlohmann::json& items, const Output& out) {
  std::vector<std::string> ids;
  for (const auto& op : items) ids.push_back(str(op, "id"));
  size_t id_len = out.short_ids ? unique_prefix_length(ids, 8) : std::string::npos;
  enum { ID, NAME, STATE, CODE, RESOURCE, CREATED };
  std::vector<std::vector<std::string>> rows = {{"ID", "NAME", "STATE", "CODE", "RESOURCE", "CREATED"}};
  for (const auto& op : items) {
    std::string resource = str(op, "resource");
    std::string origin = str(op, "origin");
    if (resource.empty() && origin.rfind("DELETE ", 0) == 0) resource = origin.substr(7);  // what it deleted
    rows.push_back({str(op, "id").substr(0, id_len), str(op, "name"), out.state(str(op, "state")), str(op, "code"),
                    resource, relative_time(str(op, "created_at"))});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], display_width(r[i]));
  }
  if (out.width > 0) {
    size_t total = 0;
    for (size_t w : widths) total += w + 2;
    total -= 2;
    for (auto [col, floor] : {std::pair<int, size_t>{RESOURCE, 12}, {NAME, 10}, {CODE, 8}}) {
      if (total <= out.width) break;
      size_t cut = std::min(total - out.width, widths[col] > floor ? widths[col] - floor : 0);
      widths[col] -= cut;
      total -= cut;
    }
  }
  std::vector<std::string> lines;
  for (auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      std::string cell = r[i];
      if (display_width(cell) > widths[i] && widths[i] > 1) {
        // Plain text only here (state, the coloured column, is never cut).
        size_t keep = 0, seen = 0;
        while (keep < cell.size() && seen < widths[i] - 1) {
          ++keep;
          while (keep < cell.size() && (static_cast<unsigned char>(cell[keep]) & 0xC0) == 0x80) ++keep;
          ++seen;
        }
        cell = cell.substr(0, keep) + "…";
      }
      line += cell;
      if (i + 1 < r.size()) line += std::string(widths[i] - std::min(widths[i], display_width(cell)) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string relative_time(const std::string& t) {
  auto at = parse_rfc3339(t);
  if (!at) return "";
  int64_t s = (now_ms() - at.value()) / 1000;
  if (s < 0) s = 0;
  if (s < 60) return std::to_string(s) + "s ago";
  if (s < 3600) return std::to_string(s / 60) + "m ago";
  if (s < 86400) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

int exit_code_for_state(const std::string& s) {
  if (s == "completed") return exit_code::ok;
  if (s == "rejected") return exit_code::rejected;
  if (s == "failed" || s == "canceled") return exit_code::failed;
  return exit_code::timed_out;  // still pending or processing
}

void print_error(const std::string& message) {
  std::string line = "asyncops: " + message;
  for (auto& c : line) {
    if (c == '\n') c = ' ';
  }
  std::cerr << line << std::endl;
}

}  // namespace asyncops
