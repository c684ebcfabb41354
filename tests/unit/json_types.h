#pragma once
// A check the JSON tests share.
#include <cstddef>

#include <nlohmann/json.hpp>

namespace asyncops::test {

// Equal values of the same JSON types all the way down: == holds between
// an unsigned and an integer number of the same value.
inline bool same_types(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.type() != b.type() || a.size() != b.size()) return false;
  if (a.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto other = b.find(it.key());
      if (other == b.end() || !same_types(it.value(), *other)) return false;
    }
  } else if (a.is_array()) {
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_types(a[i], b[i])) return false;
    }
  }
  return true;
}

}  // namespace asyncops::test
