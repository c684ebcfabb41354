#include "shared/state.h"

#include "shared/name_table.h"

namespace asyncops {

const char* to_string(OpState s) { return name_in(k_state_names, s); }

std::optional<OpState> parse_state(std::string_view s) { return value_named<OpState>(k_state_names, s); }

bool is_terminal(OpState s) { return s != OpState::pending && s != OpState::processing; }

std::vector<std::string> state_names() {
  std::vector<std::string> out;
  for (const StateName& n : k_state_names) out.emplace_back(n.name);
  return out;
}

std::string state_names_text() {
  std::string out;
  for (const StateName& n : k_state_names) out += (out.empty() ? "" : ", ") + std::string(n.name);
  return out;
}

}  // namespace asyncops
