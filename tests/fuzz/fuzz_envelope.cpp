// libFuzzer: the wire envelope decoders. First byte picks the decoder
// (mod 8: command, event, the members parser, cancel, ready, claim, grant,
// heartbeat). Two are differential. An event's fast limits check must agree
// with decoding its text. In the members case, parse_json_within's tree must
// be nlohmann's parser's, types included; parse_json_members_within must give
// its members; and json_text must write what nlohmann's dump writes, for the
// tree and for the raw bytes as one string (invalid UTF-8 included). A
// disagreement traps.
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "shared/envelope.h"
#include "shared/json_limits.h"
#include "shared/json_text.h"

using namespace asyncops;

namespace {
bool same_types(const nlohmann::json& x, const nlohmann::json& y) {
  std::vector<std::pair<const nlohmann::json*, const nlohmann::json*>> todo{{&x, &y}};
  while (!todo.empty()) {
    auto [a, b] = todo.back();
    todo.pop_back();
    if (a->type() != b->type()) return false;
    if (a->is_object()) {
      for (auto it = a->begin(); it != a->end(); ++it) {
        auto other = b->find(it.key());
        if (other == b->end()) return false;
        todo.emplace_back(&it.value(), &*other);
      }
    } else if (a->is_array()) {
      if (a->size() != b->size()) return false;
      for (std::size_t i = 0; i < a->size(); ++i) todo.emplace_back(&(*a)[i], &(*b)[i]);
    }
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0:
      if (auto c = decode_command(k_kind_command, body)) (void)encode(c.value());
      break;
    case 3:
      if (auto c = decode_cancel(body)) (void)encode(c.value());
      break;
    case 1:
      if (auto e = decode_event(body)) {
        std::string text = encode(e.value()).body;
        if (check_encoded_event(e.value(), text).ok() != decode_event(text).ok()) __builtin_trap();
      }
      break;
    case 2: {
      // Small limits, so that both of its paths run.
      JsonLimits lim;
      lim.max_values = 64;
      lim.max_string_bytes = 32;
      lim.max_depth = 8;
      BoundedJson tree = parse_json_within(body, lim);
      BoundedMembers members = parse_json_members_within(body, lim);
      bool object = tree.violation == JsonViolation::none && tree.value.is_object();
      if (tree.violation == JsonViolation::none) {
        // The plain-subset tree against nlohmann's own parser.
        nlohmann::json reference = nlohmann::json::parse(body, nullptr, false);
        if (reference != tree.value || !same_types(reference, tree.value)) __builtin_trap();
      }
      if (tree.violation == JsonViolation::none && json_text(tree.value) != tree.value.dump()) __builtin_trap();
      {
        nlohmann::json raw = body;
        auto replace = nlohmann::json::error_handler_t::replace;
        if (json_text(raw) != raw.dump(-1, ' ', false, replace)) __builtin_trap();
        bool strict_threw = false, fast_threw = false;
        std::string strict_text, fast_text;
        try {
          strict_text = raw.dump();
        } catch (const nlohmann::json::exception&) {
          strict_threw = true;
        }
        try {
          fast_text = json_text(raw, nlohmann::json::error_handler_t::strict);
        } catch (const nlohmann::json::exception&) {
          fast_threw = true;
        }
        if (strict_threw != fast_threw || strict_text != fast_text) __builtin_trap();
      }
      if (members.violation != tree.violation || members.error != tree.error || members.object != object) {
        __builtin_trap();
      }
      if (object) {
        nlohmann::json rebuilt = nlohmann::json::object();
        for (auto& [k, v] : members.value.members) {
          if (rebuilt.contains(k)) __builtin_trap();
          rebuilt[k] = v;
        }
        if (rebuilt != tree.value) __builtin_trap();
        // == holds between an unsigned and an integer of the same value:
        // the types must agree too, all the way down.
        if (!same_types(rebuilt, tree.value)) __builtin_trap();
      }
      break;
    }
    case 4:
      if (auto r = decode_ready(body)) (void)encode(r.value());
      break;
    case 5:
      if (auto c = decode_claim(body)) (void)encode(c.value());
      break;
    case 6:
      if (auto g = decode_grant(body)) (void)encode(g.value());
      break;
    default:
      if (auto h = decode_heartbeat(body)) (void)encode(h.value());
      break;
  }
  return 0;
}
