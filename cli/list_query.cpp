#include "cli/list_query.h"

#include <chrono>

#include "cli/client.h"
#include "shared/clock.h"
#include "shared/duration.h"

namespace asyncops {

std::string shell_quote(const std::string& arg) {
  bool safe = !arg.empty();
  for (unsigned char c : arg) {
    if (!(std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == ':' || c == '=' || c == '@' ||
          c == '+' || c == ',')) {
      safe = false;
      break;
    }
  }
  if (safe) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string list_query(const ListOptions& o, const std::string& since, const std::string& until,
                       const std::string& cursor) {
  std::string q = "?limit=" + std::to_string(o.limit);
  if (!o.state.empty()) q += "&state=" + url_encode(o.state);
  if (!o.name.empty()) q += "&name=" + url_encode(o.name);
  if (!since.empty()) q += "&since=" + url_encode(since);
  if (!until.empty()) q += "&until=" + url_encode(until);
  if (!o.code.empty()) q += "&code=" + url_encode(o.code);
  if (!o.owner.empty()) q += "&owner=" + url_encode(o.owner);
  if (!o.resource.empty()) q += "&resource=" + url_encode(o.resource);
  if (!cursor.empty()) q += "&cursor=" + url_encode(cursor);
  return q;
}

std::string next_page_command(const std::vector<std::string>& global, const ListOptions& o,
                              const std::string& next_cursor) {
  std::string cmd = "asyncops";
  for (const auto& a : global) cmd += " " + shell_quote(a);
  cmd += " list";
  if (!o.state.empty()) cmd += " --state " + shell_quote(o.state);
  if (!o.name.empty()) cmd += " --name " + shell_quote(o.name);
  if (!o.since.empty()) cmd += " --since " + shell_quote(o.since);
  if (!o.until.empty()) cmd += " --until " + shell_quote(o.until);
  if (!o.code.empty()) cmd += " --code " + shell_quote(o.code);
  if (!o.owner.empty()) cmd += " --owner " + shell_quote(o.owner);
  if (!o.resource.empty()) cmd += " --resource " + shell_quote(o.resource);
  cmd += " --limit " + std::to_string(o.limit);
  cmd += " --cursor " + shell_quote(next_cursor);
  return cmd;
}

Result<std::string> resolve_since(const std::string& text, int64_t now) {
  return resolve_time("--since", text, now);
}

Result<std::string> resolve_time(const std::string& flag, const std::string& text, int64_t now) {
  if (text.empty()) return std::string();
  if (auto d = parse_duration(text)) return format_rfc3339_ms(now - d->count());
  if (parse_rfc3339(text)) return text;
  return Error{flag + " " + text +
               ": expected a duration like 30s, 10m, 2h or 7d, or an RFC 3339 time like 2024-11-27T07:00:00Z"};
}

}  // namespace asyncops
