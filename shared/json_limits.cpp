#include "shared/json_limits.h"

#include <algorithm>
#include <utility>
#include <vector>

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
      while (i < n && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
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

}  // namespace asyncops
