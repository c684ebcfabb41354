#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace asyncops {

// The life of an operation: pending -> processing -> one terminal state.
// A terminal state never changes again.
enum class OpState { pending, processing, completed, rejected, failed, canceled };

// Every state with its name, in the order above: the one list of state
// names (the API, the CLI and the store all use these; shared/name_table.h
// looks them up).
struct StateName {
  OpState state;
  const char* name;
};
inline constexpr StateName k_state_names[] = {
    {OpState::pending, "pending"},     {OpState::processing, "processing"}, {OpState::completed, "completed"},
    {OpState::rejected, "rejected"},   {OpState::failed, "failed"},         {OpState::canceled, "canceled"},
};

const char* to_string(OpState s);
std::optional<OpState> parse_state(std::string_view s);
bool is_terminal(OpState s);

// The names of every state, in order.
std::vector<std::string> state_names();
// The same joined by ", ", for messages: "pending, processing, ...".
std::string state_names_text();

}  // namespace asyncops
