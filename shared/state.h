#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace asyncops {

// The life of an operation: pending -> processing -> one terminal state.
// A terminal state never changes again.
enum class OpState { pending, processing, completed, rejected, failed, canceled };

const char* to_string(OpState s);
std::optional<OpState> parse_state(std::string_view s);
bool is_terminal(OpState s);

}  // namespace asyncops
