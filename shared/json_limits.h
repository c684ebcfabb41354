#pragma once
// JSON from a peer, parsed within limits (issue 15).
//
// nlohmann::json's dump() recurses once per nesting level, so a document
// nested 100,000 deep crashes whatever thread serialises it. And a peer that
// may send one huge document may send many. So every JSON text that comes
// from outside the process is parsed here: the size and the nesting depth are
// checked on the raw bytes before nlohmann sees them, and the number of
// values and the length of each string while it parses.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace asyncops {

struct JsonLimits {
  size_t max_bytes = 1 << 20;        // the whole text
  int max_depth = 64;                // arrays and objects; the outermost is level 1
  size_t max_values = 10000;         // every value, containers included, and every key
  size_t max_string_bytes = 1 << 20; // any one string or key
};

enum class JsonViolation { none, too_large, too_deep, too_many_values, string_too_long, invalid };

// "too_large", "too_deep", "too_many_values", "string_too_long", "invalid".
const char* to_string(JsonViolation v);

struct BoundedJson {
  nlohmann::json value;  // discarded unless violation == none
  JsonViolation violation = JsonViolation::none;
  std::string error;     // one line naming the limit, empty when none
};

// Parses text within limits. Never throws, and never recurses per level:
// a text over max_bytes or nested deeper than max_depth is refused before
// nlohmann parses it.
BoundedJson parse_json_within(std::string_view text, const JsonLimits& limits);

// True when text, if it is valid JSON, is certainly within limits: its
// size, its nesting, and the bounds of one pass over its bytes (see
// parse_json_within). False says only that parsing it is needed to tell.
// For text this process wrote itself, so known to be valid JSON.
bool json_certainly_within(std::string_view text, const JsonLimits& limits);

// True, with *out the tree nlohmann's parser would build, when text is
// certainly within limits (json_certainly_within) and is an object in the
// plain subset that commands and events are made of (objects, arrays,
// ASCII strings with the two-character escapes, integers of up to 18
// digits, literals). False for anything else, and *out is then to be
// ignored: the caller parses the text its own way, which says what is
// wrong with it, if anything.
bool parse_plain_object_within(std::string_view text, const JsonLimits& limits, nlohmann::json* out);

// A JSON object's members in text order, each key once (a repeated key
// keeps its last value, as nlohmann's parser does). For the decoders of the
// messages on every operation: no std::map and no tree for the object
// itself, only for the containers inside it.
struct JsonMembers {
  std::vector<std::pair<std::string, nlohmann::json>> members;
  // The member named key, or null.
  nlohmann::json* find(std::string_view key);
};

struct BoundedMembers {
  JsonMembers value;     // empty unless violation == none and object
  bool object = false;   // the text is a JSON object (violation == none)
  JsonViolation violation = JsonViolation::none;
  std::string error;     // as parse_json_within's
};

// parse_json_within for a text that should hold an object: the same
// violations and errors, and for an object the same members. Text that is
// certainly within the limits (json_certainly_within) is parsed by SAX into
// the members directly; the rest as by parse_json_within.
BoundedMembers parse_json_members_within(std::string_view text, const JsonLimits& limits);

// Parses a small message whose size the transport has bounded already,
// keeping no value deeper than max_depth in nlohmann's count (the outermost
// value is depth 0). Never throws: text that is not JSON, or that nests any
// deeper, comes back discarded (is_discarded()).
nlohmann::json parse_json_shallow(std::string_view text, int max_depth);

// True when no array or object in text nests deeper than max_depth. Counts
// brackets outside strings only; does not validate the rest of the syntax.
bool json_nesting_within(std::string_view text, int max_depth);

// True when no array or object in value nests deeper than max_depth (value
// itself is level 1 if it is one). Iterative, so safe on any tree; check a
// tree built in process with this before dump() when it may be deep.
bool json_depth_within(const nlohmann::json& value, int max_depth);

}  // namespace asyncops
