#include "workers/external/handler.h"

namespace asyncops {
namespace outcomes {

std::string resource_of(const Command& cmd) {
  if (!cmd.resource.empty()) return cmd.resource;
  // The daemon accepts, for an operation that names no resource, only its
  // request path (docs/protocol.md §5): "DELETE /orders/7" -> "/orders/7".
  auto sp = cmd.origin.find(' ');
  if (sp == std::string::npos) return "";
  std::string path = cmd.origin.substr(sp + 1);
  auto q = path.find('?');
  if (q != std::string::npos) path.resize(q);
  return path;
}

Outcome completed(const Command& cmd, nlohmann::json data) {
  if (data.is_object() && data.size() == 1 && data.contains("deleted") && data["deleted"] == true) {
    return Outcome::removed(cmd.name + "_completed", resource_of(cmd));
  }
  return Outcome::completed(cmd.name + "_completed", cmd.resource, std::move(data));
}

Outcome rejected(const Command& cmd, std::string code, std::string message) {
  return Outcome::rejected(cmd.name + "_rejected", std::move(code), clean_text(message));
}

Outcome failed(const Command& cmd, std::string code, std::string message) {
  return Outcome::failed(cmd.name + "_failed", std::move(code), clean_text(message));
}

}  // namespace outcomes

std::string clean_text(std::string_view text) {
  // Valid UTF-8 passes as it is; each byte of an invalid sequence becomes
  // U+FFFD, so that any program output can go into an event.
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len > 0 && i + len <= text.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (ok && len == 2) ok = c >= 0xC2;
    if (ok && len == 3) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);
    }
    if (ok && len == 4) {
      auto c1 = static_cast<unsigned char>(text[i + 1]);
      ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
    }
    if (ok && len == 1 && c < 0x20 && c != '\n' && c != '\t') {
      out += ' ';  // other control characters read badly in a log line
      ++i;
      continue;
    }
    if (ok) {
      out.append(text.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

}  // namespace asyncops
