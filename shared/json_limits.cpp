#include "shared/json_limits.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "shared/ascii_run.h"

namespace asyncops {

const char* to_string(JsonViolation v) {
  switch (v) {
    case JsonViolation::none: return "none";
    case JsonViolation::too_large: return "too_large";
    case JsonViolation::too_deep: return "too_deep";
    case JsonViolation::too_many_values: return "too_many_values";
    case JsonViolation::string_too_long: return "string_too_long";
    case JsonViolation::invalid: return "invalid";
  }
  return "invalid";
}

nlohmann::json parse_json_shallow(std::string_view text, int max_depth) {
  bool too_deep = false;
  nlohmann::json value = nlohmann::json::parse(
      text,
      [&](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
        if (depth > max_depth) too_deep = true;
        return !too_deep;
      },
      /*allow_exceptions=*/false);
  return too_deep ? nlohmann::json(nlohmann::json::value_t::discarded) : value;
}

namespace {
// What one pass over a JSON text's raw bytes can tell of it, without
// validating its syntax: whether its brackets nest past max_depth, an upper
// bound on the values and keys the parser will count, and its longest
// string's raw length (an escape is never shorter than what it decodes to,
// so no decoded string is longer).
struct JsonScan {
  bool too_deep = false;
  size_t values_bound = 0;
  size_t longest_string = 0;
};

JsonScan scan_json(std::string_view text, int max_depth) {
  JsonScan scan;
  int depth = 0;
  size_t strings = 0, containers = 0, commas = 0;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    char c = text[i];
    if (c == '"') {
      // A key or a string value: to its closing quote.
      ++strings;
      size_t start = ++i;
      while (i < n && text[i] != '"') {
        i += plain_ascii_run(text.data() + i, n - i);  // none of them a quote or a backslash
        while (i < n && text[i] != '"' && text[i] != '\\') ++i;
        if (i < n && text[i] == '\\') i += 2;
      }
      scan.longest_string = std::max(scan.longest_string, std::min(i, n) - start);
      ++i;
      continue;
    }
    switch (c) {
      case '[':
      case '{':
        ++containers;
        if (++depth > max_depth) {
          scan.too_deep = true;
          return scan;
        }
        break;
      case ']':
      case '}':
        --depth;  // unbalanced text is left for the parser to refuse
        break;
      case ',':
        ++commas;
        break;
      default: break;
    }
    ++i;
  }
  // Every value or key is a string, a container, or a bare scalar (a
  // number, true, false or null); a bare scalar is the whole text, the
  // first in its container, or follows a comma.
  scan.values_bound = strings + 2 * containers + commas + 1;
  return scan;
}
// Parses text into *out when it is an object in the plain subset that
// plain_sax_parse reads (below), with the tree and the types nlohmann's
// parser would give; false for anything else.
bool parse_plain_tree(std::string_view text, nlohmann::json* out);

}  // namespace

bool json_nesting_within(std::string_view text, int max_depth) { return !scan_json(text, max_depth).too_deep; }

bool json_certainly_within(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) return false;
  JsonScan scan = scan_json(text, limits.max_depth);
  return !scan.too_deep && scan.values_bound <= limits.max_values && scan.longest_string <= limits.max_string_bytes;
}

bool json_depth_within(const nlohmann::json& value, int max_depth) {
  std::vector<std::pair<const nlohmann::json*, int>> todo{{&value, 1}};
  while (!todo.empty()) {
    auto [v, depth] = todo.back();
    todo.pop_back();
    if (!v->is_structured()) continue;
    if (depth > max_depth) return false;
    for (const auto& child : *v) {
      if (child.is_structured()) todo.emplace_back(&child, depth + 1);
    }
  }
  return true;
}

BoundedJson parse_json_within(std::string_view text, const JsonLimits& limits) {
  BoundedJson out;
  out.value = nlohmann::json(nlohmann::json::value_t::discarded);
  if (text.size() > limits.max_bytes) {
    out.violation = JsonViolation::too_large;
    out.error = "the JSON text is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                std::to_string(limits.max_bytes);
    return out;
  }
  JsonScan scan = scan_json(text, limits.max_depth);
  if (scan.too_deep) {
    out.violation = JsonViolation::too_deep;
    out.error = "the JSON text nests more than " + std::to_string(limits.max_depth) + " levels deep";
    return out;
  }
  using json = nlohmann::json;
  if (scan.values_bound <= limits.max_values && scan.longest_string <= limits.max_string_bytes) {
    // Within both limits whatever the parser finds: nlohmann's plain parser,
    // without the per-value callback below (a 400-byte event: 3.9 against
    // 5.3 us). Its tree is the one the callback parser would keep, which
    // keeps everything then.
    // A request body or a command's object, in the plain subset: read by
    // plain_sax_parse, without nlohmann's lexer (about a third of the time).
    if (parse_plain_tree(text, &out.value)) return out;
    out.value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (out.value.is_discarded()) {
      out.violation = JsonViolation::invalid;
      out.error = "not valid JSON";
    }
    return out;
  }
  size_t values = 0;
  JsonViolation seen = JsonViolation::none;
  // Returning false from the callback drops the value; parsing goes on to
  // the end of the (size-bounded) text, and the result is thrown away.
  out.value = json::parse(
      text.begin(), text.end(),
      [&](int /*depth*/, json::parse_event_t ev, json& parsed) {
        if (seen != JsonViolation::none) return false;
        if (ev == json::parse_event_t::key || ev == json::parse_event_t::value ||
            ev == json::parse_event_t::object_start || ev == json::parse_event_t::array_start) {
          if (++values > limits.max_values) seen = JsonViolation::too_many_values;
          else if (ev != json::parse_event_t::object_start && ev != json::parse_event_t::array_start &&
                   parsed.is_string() && parsed.get_ref<const std::string&>().size() > limits.max_string_bytes)
            seen = JsonViolation::string_too_long;
        }
        return seen == JsonViolation::none;
      },
      /*allow_exceptions=*/false);
  if (seen == JsonViolation::too_many_values) {
    out.violation = seen;
    out.error = "the JSON text has more than " + std::to_string(limits.max_values) + " values and keys";
  } else if (seen == JsonViolation::string_too_long) {
    out.violation = seen;
    out.error = "a string in the JSON text is longer than " + std::to_string(limits.max_string_bytes) + " bytes";
  } else if (out.value.is_discarded()) {
    out.violation = JsonViolation::invalid;
    out.error = "not valid JSON";
  }
  if (out.violation != JsonViolation::none) out.value = json(json::value_t::discarded);
  return out;
}

nlohmann::json* JsonMembers::find(std::string_view key) {
  for (auto& [k, v] : members) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {
// nlohmann's SAX events into trees, as its own DOM parser builds them
// (json_sax_dom_parser), without recursion: a repeated key's later value
// wins. Derived says where a value that is in no container goes
// (place_top), and may refuse one (accepts_top).
template <class Derived>
class TreeBuilder {
 public:
  using json = nlohmann::json;

  bool null() { return value(json(nullptr)); }
  bool boolean(bool v) { return value(json(v)); }
  bool number_integer(json::number_integer_t v) { return value(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return value(json(v)); }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return value(json(v)); }
  // The parser's string and key are its own and read afresh for the next
  // token: they are moved, not copied.
  bool string(std::string& v) { return value(json(std::move(v))); }
  bool binary(json::binary_t& /*v*/) { return false; }  // never in JSON text
  bool end_array() {
    m_stack.pop_back();
    return true;
  }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) {
    return false;
  }

 protected:
  bool open(json&& container) {
    m_stack.push_back(place(std::move(container)));
    return true;
  }
  // A key of the innermost open object.
  bool inner_key(std::string& k) {
    m_element = &(*m_stack.back())[std::move(k)];
    return true;
  }
  bool close() {
    m_stack.pop_back();
    return true;
  }
  bool in_container() const { return !m_stack.empty(); }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  // Where the next value goes: the top (the derived class's), the next
  // element of the array being built, or the member of the object being
  // built.
  json* place(json&& v) {
    if (m_stack.empty()) return self().place_top(std::move(v));
    json& parent = *m_stack.back();
    if (parent.is_array()) {
      auto& elements = parent.get_ref<json::array_t&>();
      elements.push_back(std::move(v));
      return &elements.back();
    }
    *m_element = std::move(v);
    return m_element;
  }
  bool value(json&& v) {
    if (m_stack.empty() && !self().accepts_top()) return false;
    place(std::move(v));
    return true;
  }

  std::vector<json*> m_stack;  // the containers open, innermost last
  json* m_element = nullptr;
};

// An object's text into JsonMembers: its members in text order, the
// containers inside each built as above. Returns false, ending the parse,
// at anything but an object at the top: the caller parses such text again
// the usual way, which says what is wrong with it.
class MembersSax : public TreeBuilder<MembersSax> {
 public:
  // Room for the members of any command or event, so that they are not
  // moved as the list grows.
  explicit MembersSax(JsonMembers* out) : m_out(out) { m_out->members.reserve(16); }

  bool start_object(std::size_t /*elements*/) {
    if (!m_started) {
      m_started = true;
      return true;
    }
    return open(json(json::value_t::object));
  }
  bool key(std::string& k) {
    if (in_container()) return inner_key(k);
    // A top-level member: a repeated key's value is replaced in place.
    m_member = m_out->find(k);
    if (!m_member) m_member = &m_out->members.emplace_back(std::move(k), nullptr).second;
    *m_member = nullptr;
    return true;
  }
  bool end_object() {
    if (in_container()) return close();
    m_done = true;
    return true;
  }
  bool start_array(std::size_t /*elements*/) {
    if (!m_started) return false;  // not an object
    return open(json(json::value_t::array));
  }
  bool done() const { return m_done; }

  // The value of the member being read.
  json* place_top(json&& v) {
    *m_member = std::move(v);
    return m_member;
  }
  bool accepts_top() const { return m_started; }  // not a scalar at the top

 private:
  JsonMembers* m_out;
  json* m_member = nullptr;
  bool m_started = false;
  bool m_done = false;
};

// The JSON that commands and events are made of, read without nlohmann's
// lexer (which copies every character of a token twice, for the value and
// for its error messages: half of the tracker thread's instructions). It
// takes objects, arrays, strings of ASCII with the two-character escapes,
// integers of up to 18 digits, true, false and null, and hands the SAX the
// same events, with the same values, as nlohmann's parser. At anything
// else (a byte over 0x7f or a control character in a string, a \u escape,
// a fraction or an exponent, a longer integer, a leading zero, a BOM) and
// at anything malformed it stops, and the caller parses the whole text
// again with nlohmann's parser, which answers for every such case.
enum class Plain { parsed, other };

bool json_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
bool json_digit(char c) { return c >= '0' && c <= '9'; }

template <class Sax>
Plain plain_sax_parse(std::string_view text, Sax& sax) {
  constexpr std::size_t k_unknown = static_cast<std::size_t>(-1);  // as nlohmann's parser reports sizes
  const char* p = text.data();
  const char* const end = p + text.size();
  std::string open;  // '{' or '[' for each container open, innermost last
  std::string s;     // the last string or key read
  auto skip_space = [&] {
    while (p < end && json_space(*p)) ++p;
  };
  // At the opening quote; reads up to and past the closing one into s.
  auto read_string = [&]() -> bool {
    ++p;
    s.clear();
    const char* run = p;
    while (p < end) {
      p += plain_ascii_run(p, static_cast<std::size_t>(end - p));
      while (p < end && plain_json_byte(*p)) ++p;
      if (p == end) break;
      auto c = static_cast<unsigned char>(*p);
      if (c == '"') {
        s.append(run, p);
        ++p;
        return true;
      }
      if (c < 0x20 || c >= 0x80) return false;
      if (c == '\\') {
        s.append(run, p);
        if (end - p < 2) return false;
        switch (p[1]) {
          case '"': s.push_back('"'); break;
          case '\\': s.push_back('\\'); break;
          case '/': s.push_back('/'); break;
          case 'b': s.push_back('\b'); break;
          case 'f': s.push_back('\f'); break;
          case 'n': s.push_back('\n'); break;
          case 'r': s.push_back('\r'); break;
          case 't': s.push_back('\t'); break;
          default: return false;  // \u, or not an escape at all
        }
        p += 2;
        run = p;
        continue;
      }
      ++p;
    }
    return false;
  };
  auto literal = [&](std::string_view word) {
    if (static_cast<std::size_t>(end - p) < word.size() || std::string_view(p, word.size()) != word) return false;
    p += word.size();
    return true;
  };

  skip_space();
  if (p == end || *p != '{') return Plain::other;
  enum class Next { value, key, after_value } next = Next::value;
  for (;;) {
    switch (next) {
      case Next::value: {
        skip_space();
        if (p == end) return Plain::other;
        char c = *p;
        if (c == '{' || c == '[') {
          ++p;
          if (!(c == '{' ? sax.start_object(k_unknown) : sax.start_array(k_unknown))) return Plain::other;
          open.push_back(c);
          skip_space();
          char close = c == '{' ? '}' : ']';
          if (p < end && *p == close) {
            ++p;
            open.pop_back();
            if (!(c == '{' ? sax.end_object() : sax.end_array())) return Plain::other;
            next = Next::after_value;
          } else {
            next = c == '{' ? Next::key : Next::value;
          }
          continue;
        }
        bool ok = true;
        if (c == '"') {
          ok = read_string() && sax.string(s);
        } else if (c == 't') {
          ok = literal("true") && sax.boolean(true);
        } else if (c == 'f') {
          ok = literal("false") && sax.boolean(false);
        } else if (c == 'n') {
          ok = literal("null") && sax.null();
        } else if (c == '-' || json_digit(c)) {
          bool negative = c == '-';
          if (negative) ++p;
          const char* digits = p;
          if (p == end || !json_digit(*p)) return Plain::other;
          if (*p == '0') {
            ++p;
          } else {
            while (p < end && json_digit(*p)) ++p;
          }
          // A leading zero followed by a digit, a fraction, an exponent, or
          // more digits than any int64 or uint64 holds: nlohmann's to say.
          if (p < end && (json_digit(*p) || *p == '.' || *p == 'e' || *p == 'E')) return Plain::other;
          if (p - digits > 18) return Plain::other;
          std::uint64_t v = 0;
          for (const char* d = digits; d < p; ++d) v = v * 10 + static_cast<std::uint64_t>(*d - '0');
          ok = negative ? sax.number_integer(-static_cast<std::int64_t>(v)) : sax.number_unsigned(v);
        } else {
          return Plain::other;
        }
        if (!ok) return Plain::other;
        next = Next::after_value;
        continue;
      }
      case Next::key: {
        skip_space();
        if (p == end || *p != '"' || !read_string() || !sax.key(s)) return Plain::other;
        skip_space();
        if (p == end || *p != ':') return Plain::other;
        ++p;
        next = Next::value;
        continue;
      }
      case Next::after_value: {
        skip_space();
        if (open.empty()) return p == end ? Plain::parsed : Plain::other;
        if (p == end) return Plain::other;
        bool in_object = open.back() == '{';
        if (*p == ',') {
          ++p;
          next = in_object ? Next::key : Next::value;
          continue;
        }
        if (*p != (in_object ? '}' : ']')) return Plain::other;
        ++p;
        open.pop_back();
        if (!(in_object ? sax.end_object() : sax.end_array())) return Plain::other;
        continue;
      }
    }
  }
}
// Any text into one tree.
class TreeSax : public TreeBuilder<TreeSax> {
 public:
  explicit TreeSax(json* root) : m_root(root) {}

  bool start_object(std::size_t /*elements*/) { return open(json(json::value_t::object)); }
  bool key(std::string& k) { return inner_key(k); }
  bool end_object() { return close(); }
  bool start_array(std::size_t /*elements*/) { return open(json(json::value_t::array)); }

  json* place_top(json&& v) {
    *m_root = std::move(v);
    return m_root;
  }
  bool accepts_top() const { return true; }

 private:
  json* m_root;
};

bool parse_plain_tree(std::string_view text, nlohmann::json* out) {
  TreeSax sax(out);
  return plain_sax_parse(text, sax) == Plain::parsed;
}

}  // namespace

bool parse_plain_object_within(std::string_view text, const JsonLimits& limits, nlohmann::json* out) {
  return json_certainly_within(text, limits) && parse_plain_tree(text, out);
}

BoundedMembers parse_json_members_within(std::string_view text, const JsonLimits& limits) {
  BoundedMembers out;
  if (json_certainly_within(text, limits)) {
    {
      MembersSax sax(&out.value);
      if (plain_sax_parse(text, sax) == Plain::parsed && sax.done()) {
        out.object = true;
        return out;
      }
      out.value.members.clear();  // anything but the plain subset: nlohmann's parser
    }
    MembersSax sax(&out.value);
    if (nlohmann::json::sax_parse(text.begin(), text.end(), &sax) && sax.done()) {
      out.object = true;
      return out;
    }
    out.value.members.clear();  // not an object, or not JSON: said below
  }
  BoundedJson parsed = parse_json_within(text, limits);
  out.violation = parsed.violation;
  out.error = std::move(parsed.error);
  if (parsed.violation == JsonViolation::none && parsed.value.is_object()) {
    out.object = true;
    for (auto it = parsed.value.begin(); it != parsed.value.end(); ++it) {
      out.value.members.emplace_back(it.key(), std::move(it.value()));
    }
  }
  return out;
}

}  // namespace asyncops
