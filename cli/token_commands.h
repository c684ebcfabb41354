#pragma once
// Registers `asyncops token ...` and `asyncops keygen` (issue 7). Like every
// command, each sets run, called once the configuration is complete.
#include <functional>

namespace CLI {
class App;
}

namespace asyncops {
struct GlobalOptions;
void add_token_commands(CLI::App& app, const GlobalOptions& g, std::function<int()>& run);
}  // namespace asyncops
