#pragma once
namespace asyncops {
// main() of the asyncops CLI: the command tree, then one command.
int cli_main(int argc, char** argv);
}  // namespace asyncops
