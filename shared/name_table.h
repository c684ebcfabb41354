#pragma once
// Lookups in a table of {value, name} pairs: the form in which an enum lists
// its names once (k_state_names in shared/state.h, the history kinds in
// store/operation.cpp).
#include <optional>
#include <string_view>

namespace asyncops {

// The name paired with value in table, or "unknown".
template <class Table, class Value>
const char* name_in(const Table& table, Value value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "unknown";
}

// The value paired with name in table, if any.
template <class Value, class Table>
std::optional<Value> value_named(const Table& table, std::string_view name) {
  for (const auto& [v, n] : table) {
    if (name == n) return v;
  }
  return std::nullopt;
}

}  // namespace asyncops
