#pragma once
// Registers `asyncops token ...` and `asyncops keygen` (issue 7).
namespace CLI {
class App;
}

namespace asyncops {
void add_token_commands(CLI::App& app, int& result);
}  // namespace asyncops
