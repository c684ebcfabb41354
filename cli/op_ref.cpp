#include "cli/op_ref.h"

#include "cli/client.h"
#include "cli/exit_codes.h"
#include "shared/clock.h"
#include "shared/ids.h"

namespace asyncops {

std::string op_ref_text(const std::string& given) {
  std::string s = given;
  if (auto scheme = s.find("://"); scheme != std::string::npos) {
    auto path = s.find('/', scheme + 3);
    s = path == std::string::npos ? "" : s.substr(path);
  }
  auto q = s.find_first_of("?#");
  if (q != std::string::npos) s.resize(q);
  const std::string ops = "/operations/";
  if (s.rfind(ops, 0) == 0) s = s.substr(ops.size());
  else if (s.rfind("operations/", 0) == 0) s = s.substr(ops.size() - 1);
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (auto slash = s.find('/'); slash != std::string::npos) s.resize(slash);  // /events, /history, /cancel
  return s;
}

int64_t uuid_prefix_min_ms(const std::string& prefix) {
  std::string hex;
  for (char c : prefix) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return -1;
    hex.push_back(c);
    if (hex.size() == 12) break;
  }
  if (hex.empty()) return -1;
  hex.resize(12, '0');
  return static_cast<int64_t>(std::stoll(hex, nullptr, 16));
}

ResolvedOp resolve_op(ApiClient& client, const std::string& given) {
  ResolvedOp r;
  std::string text = op_ref_text(given);
  if (is_uuid(text)) {
    r.id = text;
    for (auto& c : r.id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
  }
  size_t digits = 0;
  bool shape = !text.empty();
  for (char c : text) {
    if (std::isxdigit(static_cast<unsigned char>(c))) ++digits;
    else if (c != '-') shape = false;
  }
  if (!shape || text.size() > 36 || digits < 4) {
    // Not a prefix we can look up: the daemon says what it makes of it.
    r.id = text.empty() ? given : text;
    return r;
  }
  std::string prefix = text;
  for (auto& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int64_t min_ms = uuid_prefix_min_ms(prefix);
  if (min_ms > now_ms() + 86400000) {  // an id from the future: none yet
    r.error = "no operation id starts with " + prefix;
    r.exit_code = exit_code::error;
    return r;
  }
  // Ids are UUIDv7: none starting with prefix was made before its
  // timestamp; a minute's slack covers the id being minted just before the
  // operation's created_at.
  std::string query = "/operations?limit=1000";
  if (min_ms > 60000) {
    query += "&since=" + url_encode(format_rfc3339_ms(min_ms - 60000));
  }
  std::vector<std::string> found;
  std::string cursor;
  for (int page = 0; page < 50; ++page) {
    ApiResponse resp = client.get(query + (cursor.empty() ? "" : "&cursor=" + url_encode(cursor)));
    if (!resp.reached || resp.status != 200 || !resp.json.is_object()) {
      r.error = resp.describe();
      r.exit_code = resp.reached ? exit_code::error : exit_code::unreachable;
      return r;
    }
    for (const auto& op : resp.json["items"]) {
      std::string id = op.value("id", "");
      if (id.rfind(prefix, 0) == 0) found.push_back(id);
    }
    if (found.size() > 1 || !resp.json["next"].is_string()) break;
    cursor = resp.json["next"].get<std::string>();
  }
  if (found.size() == 1) {
    r.id = found[0];
    return r;
  }
  r.exit_code = exit_code::error;
  if (found.empty()) {
    r.error = "no operation id starts with " + prefix;
  } else {
    std::string list;
    for (size_t i = 0; i < found.size() && i < 5; ++i) list += (i ? ", " : "") + found[i];
    r.error = "operation id prefix " + prefix + " is ambiguous: " + list + (found.size() > 5 ? ", …" : "") +
              "; give more digits";
  }
  return r;
}

}  // namespace asyncops
