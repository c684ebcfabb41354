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

// Rows padded into columns two spaces apart, by display width; each line
// starts with indent and has no trailing spaces.
std::vector<std::string> columns(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> widths;
  for (const auto& r : rows) {
    if (widths.size() < r.size()) widths.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], display_width(r[i]));
  }
  std::vector<std::string> lines;
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(widths[i] - display_width(r[i]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// j[key] when it is an integer, else 0: a document from a peer may say anything.
int int_of(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int>() : 0;
}

// " (CODE)" for a compensation that failed, so that the table says why.
std::string compensation_cell(const nlohmann::json& c, const Output& out) {
  if (!c.is_object()) return "-";
  std::string state = str(c, "state"), code = str(c, "code");
  return out.state(state) + (state == "failed" && !code.empty() ? " (" + code + ")" : "");
}

// "  CODE  MESSAGE  (attempt N)", each part only when it says something.
std::string outcome_suffix(const nlohmann::json& j, bool with_attempt) {
  std::string code = str(j, "code"), message = str(j, "message");
  int attempt = int_of(j, "attempt");
  return (code.empty() ? "" : "  " + code) + (message.empty() ? "" : "  " + message) +
         (with_attempt && attempt > 1 ? "  (attempt " + std::to_string(attempt) + ")" : "");
}

const nlohmann::json& null_json() {
  static const nlohmann::json k_null;
  return k_null;
}

// The step of before's "steps" named name; null when there is none.
const nlohmann::json& step_named(const nlohmann::json& before, const std::string& name) {
  if (!before.is_object()) return null_json();
  auto it = before.find("steps");
  if (it == before.end() || !it->is_array()) return null_json();
  for (const auto& s : *it) {
    if (s.is_object() && str(s, "name") == name) return s;
  }
  return null_json();
}

bool same_progress(const nlohmann::json& a, const nlohmann::json& b, const char* default_state) {
  auto state = [&](const nlohmann::json& j) {
    std::string s = j.is_object() ? str(j, "state") : "";
    return s.empty() ? std::string(default_state) : s;
  };
  auto field = [](const nlohmann::json& j, const char* k) { return j.is_object() ? str(j, k) : std::string(); };
  return state(a) == state(b) && field(a, "code") == field(b, "code") && int_of(a, "attempt") == int_of(b, "attempt");
}

// "07:20:10.433" from an RFC 3339 time.
std::string clock_part(const std::string& t) { return t.size() >= 23 ? t.substr(11, 12) : t; }

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
  else if (s == "pending" || s == "waiting" || s == "skipped") c = "2";
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
  auto steps = op.find("steps");
  if (steps != op.end()) {
    std::vector<std::string> table = steps_table(*steps, *this);
    if (!table.empty()) std::printf("steps\n");
    for (const auto& line : table) std::printf("%s\n", line.c_str());
  }
  std::fflush(stdout);
}

std::vector<std::string> steps_table(const nlohmann::json& steps, const Output& out) {
  if (!steps.is_array() || steps.empty()) return {};
  std::vector<std::vector<std::string>> rows = {{"STEP", "SERVICE", "STATE", "CODE", "ATTEMPT", "COMPENSATION"}};
  for (const auto& s : steps) {
    if (!s.is_object()) continue;
    auto comp = s.find("compensation");
    rows.push_back({str(s, "name"), str(s, "service"), out.state(str(s, "state")), str(s, "code"), str(s, "attempt"),
                    compensation_cell(comp == s.end() ? null_json() : *comp, out)});
  }
  return columns(rows, "  ");
}

std::vector<std::string> watch_lines(const nlohmann::json& before, const nlohmann::json& op, const Output& out) {
  std::vector<std::string> lines;
  std::string clock = clock_part(str(op, "updated_at"));
  auto steps = op.find("steps");
  bool saga = steps != op.end() && steps->is_array();
  bool op_changed = !before.is_object() || str(before, "state") != str(op, "state") ||
                    str(before, "code") != str(op, "code") || str(before, "message") != str(op, "message");
  if (!saga || op_changed) lines.push_back(clock + "  " + out.state(str(op, "state")) + outcome_suffix(op, false));
  if (!saga) return lines;
  for (const auto& s : *steps) {
    if (!s.is_object()) continue;
    std::string name = str(s, "name");
    const nlohmann::json& was = step_named(before, name);
    if (!same_progress(was, s, "waiting")) {
      lines.push_back(clock + "    " + name + "  " + out.state(str(s, "state")) + outcome_suffix(s, true));
    }
    auto comp = s.find("compensation");
    if (comp == s.end() || !comp->is_object()) continue;
    auto was_comp = was.is_object() ? was.find("compensation") : was.end();
    const nlohmann::json& old_comp = was.is_object() && was_comp != was.end() ? *was_comp : null_json();
    if (!same_progress(old_comp, *comp, "none")) {
      lines.push_back(clock + "    " + name + "  compensation " + out.state(str(*comp, "state")) +
                      outcome_suffix(*comp, true));
    }
  }
  return lines;
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
