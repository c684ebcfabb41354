#pragma once
// JSON written straight into a string, for the hot path.
//
// nlohmann::json builds a tree (a std::map per object, a heap string per
// value) before it serialises; for the small flat objects sent on every
// request (the 202 body, commands, events) writing the text directly costs a
// fraction of that. For valid UTF-8 the output is byte for byte what
// nlohmann's dump(-1, ' ', false, error_handler_t::replace) writes for the
// same object when the keys are added in sorted order (nlohmann sorts them).
// Each byte that starts no valid UTF-8 sequence becomes U+FFFD, so the text
// is always valid JSON.
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace asyncops {

// True when s is valid UTF-8 (no overlong forms, surrogates or code points
// past U+10FFFF): then append_json_string writes it unchanged, and a JSON
// parser reads back the same bytes.
bool is_valid_utf8(std::string_view s);

// Appends s as a JSON string, quotes included.
void append_json_string(std::string& out, std::string_view s);

// Appends v as nlohmann's v.dump(-1, ' ', false, on_invalid) writes it, byte
// for byte, in about a third of its time: strings of valid UTF-8 and
// integers are written here, and anything else (a float, a string that is
// not valid UTF-8, binary) by nlohmann, value by value, so its output, and
// its exception for invalid UTF-8 under error_handler_t::strict, are the
// same. Recurses once per level, as dump() does: v's depth must already be
// bounded.
void append_json(std::string& out, const nlohmann::json& v,
                 nlohmann::json::error_handler_t on_invalid = nlohmann::json::error_handler_t::replace);
// The same, as a new string: a drop-in for v.dump() (on_invalid strict,
// dump()'s default) or v.dump(-1, ' ', false, replace).
std::string json_text(const nlohmann::json& v,
                      nlohmann::json::error_handler_t on_invalid = nlohmann::json::error_handler_t::replace);

class JsonObjectWriter {
 public:
  explicit JsonObjectWriter(std::string& out) : m_out(out) { m_out.push_back('{'); }
  // key must be a plain ASCII literal: it is written as given.
  JsonObjectWriter& string(std::string_view key, std::string_view value) {
    append_json_string(name(key), value);
    return *this;
  }
  // null when value is empty.
  JsonObjectWriter& string_or_null(std::string_view key, std::string_view value) {
    if (value.empty()) name(key).append("null");
    else append_json_string(name(key), value);
    return *this;
  }
  JsonObjectWriter& number(std::string_view key, int64_t value) {
    name(key).append(std::to_string(value));
    return *this;
  }
  JsonObjectWriter& boolean(std::string_view key, bool value) {
    name(key).append(value ? "true" : "false");
    return *this;
  }
  JsonObjectWriter& value(std::string_view key, const nlohmann::json& v) {
    append_json(name(key), v);
    return *this;
  }
  // text as it is when it is not empty (the caller's dump of v, made
  // earlier), else v.
  JsonObjectWriter& value_or_text(std::string_view key, const nlohmann::json& v, std::string_view text) {
    if (text.empty()) return value(key, v);
    name(key).append(text);
    return *this;
  }
  void close() { m_out.push_back('}'); }

 private:
  std::string& name(std::string_view key) {
    if (m_first) m_first = false;
    else m_out.push_back(',');
    m_out.push_back('"');
    m_out.append(key);
    m_out.append("\":");
    return m_out;
  }
  std::string& m_out;
  bool m_first = true;
};

}  // namespace asyncops
