#include "shared/state.h"

namespace asyncops {

const char* to_string(OpState s) {
  switch (s) {
    case OpState::pending: return "pending";
    case OpState::processing: return "processing";
    case OpState::completed: return "completed";
    case OpState::rejected: return "rejected";
    case OpState::failed: return "failed";
    case OpState::canceled: return "canceled";
  }
  return "unknown";
}

std::optional<OpState> parse_state(std::string_view s) {
  for (OpState st : {OpState::pending, OpState::processing, OpState::completed,
                     OpState::rejected, OpState::failed, OpState::canceled}) {
    if (s == to_string(st)) return st;
  }
  return std::nullopt;
}

bool is_terminal(OpState s) { return s != OpState::pending && s != OpState::processing; }

}  // namespace asyncops
