#include "shared/json_text.h"

#include <charconv>

#include "shared/ascii_run.h"

namespace asyncops {
namespace {

// The length of the valid UTF-8 sequence at s[i], or 0 if it is not one
// (overlong forms, surrogates and code points past U+10FFFF included).
size_t utf8_length(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  size_t n = s.size() - i;
  auto cont = [&](size_t k) { return (at(i + k) & 0xC0) == 0x80; };
  if (c >= 0xC2 && c <= 0xDF) return n >= 2 && cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (n < 3 || !cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && at(i + 1) < 0xA0) return 0;   // overlong
    if (c == 0xED && at(i + 1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (n < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && at(i + 1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && at(i + 1) >= 0x90) return 0;  // past U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t len = utf8_length(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

// append_json_string; or, unless replace_invalid, false at the first byte
// that starts no valid UTF-8 sequence (out then holds part of the text).
bool escape_into(std::string& out, std::string_view s, bool replace_invalid) {
  static const char* hex = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out.push_back('"');
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size();) {
    i += plain_ascii_run(s.data() + i, s.size() - i);
    while (i < s.size() && plain_json_byte(s[i])) ++i;
    if (i == s.size()) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t len = utf8_length(s, i);
      if (len > 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + plain, i - plain);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\b': out.append("\\b"); break;
      case '\f': out.append("\\f"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 0xF]);
        } else {
          if (!replace_invalid) return false;
          out.append("\xEF\xBF\xBD");  // U+FFFD for a byte that starts no valid sequence
        }
    }
    plain = ++i;
  }
  out.append(s.data() + plain, s.size() - plain);
  out.push_back('"');
  return true;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) { escape_into(out, s, true); }

namespace {

void append_by_nlohmann(std::string& out, const nlohmann::json& v, nlohmann::json::error_handler_t on_invalid) {
  out.append(v.dump(-1, ' ', false, on_invalid));
}

void append_string(std::string& out, const std::string& s, nlohmann::json::error_handler_t on_invalid) {
  size_t start = out.size();
  if (escape_into(out, s, false)) return;
  out.resize(start);
  append_by_nlohmann(out, nlohmann::json(s), on_invalid);
}

template <typename Int>
void append_integer(std::string& out, Int n) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, r.ptr);
}

}  // namespace

void append_json(std::string& out, const nlohmann::json& v, nlohmann::json::error_handler_t on_invalid) {
  using value_t = nlohmann::json::value_t;
  switch (v.type()) {
    case value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [key, member] : v.get_ref<const nlohmann::json::object_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_string(out, key, on_invalid);
        out.push_back(':');
        append_json(out, member, on_invalid);
      }
      out.push_back('}');
      return;
    }
    case value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const nlohmann::json& element : v.get_ref<const nlohmann::json::array_t&>()) {
        if (!first) out.push_back(',');
        first = false;
        append_json(out, element, on_invalid);
      }
      out.push_back(']');
      return;
    }
    case value_t::string:
      append_string(out, v.get_ref<const std::string&>(), on_invalid);
      return;
    case value_t::boolean:
      out.append(v.get<bool>() ? "true" : "false");
      return;
    case value_t::null:
      out.append("null");
      return;
    case value_t::number_integer:
      append_integer(out, v.get<int64_t>());
      return;
    case value_t::number_unsigned:
      append_integer(out, v.get<uint64_t>());
      return;
    default:  // a float's shortest round trip, binary, discarded: nlohmann's own
      append_by_nlohmann(out, v, on_invalid);
      return;
  }
}

std::string json_text(const nlohmann::json& v, nlohmann::json::error_handler_t on_invalid) {
  std::string out;
  append_json(out, v, on_invalid);
  return out;
}

}  // namespace asyncops
