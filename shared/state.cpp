#include "shared/state.h"

namespace asyncops {

const char* to_string(OpState s) {
  for (const StateName& n : k_state_names) {
    if (n.state == s) return n.name;
  }
  return "unknown";
}

std::optional<OpState> parse_state(std::string_view s) {
  for (const StateName& n : k_state_names) {
    if (s == n.name) return n.state;
  }
  return std::nullopt;
}

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
