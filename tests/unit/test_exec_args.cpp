#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include "shared/exec_args.h"

using asyncops::ExecArgs;

TEST_CASE("ExecArgs: a null-terminated argv whose strings outlive the caller's", "[exec_args]") {
  std::vector<std::string> in = {"/bin/sh", "-c", "exit 3"};
  ExecArgs argv(in);
  in.clear();  // ExecArgs keeps its own copies
  char* const* p = argv.data();
  CHECK(std::string(p[0]) == "/bin/sh");
  CHECK(std::string(p[1]) == "-c");
  CHECK(std::string(p[2]) == "exit 3");
  CHECK(p[3] == nullptr);
  CHECK(std::string(argv.first()) == "/bin/sh");
  CHECK(std::string(ExecArgs({}).first()).empty());
  CHECK(ExecArgs({}).data()[0] == nullptr);
}

TEST_CASE("ExecArgs::environment: this process's environment, with overrides set once each", "[exec_args]") {
  ::setenv("ASYNCOPS_EXEC_ARGS_A", "from-process", 1);
  ::setenv("ASYNCOPS_EXEC_ARGS_B", "kept", 1);
  auto env = ExecArgs::environment({{"ASYNCOPS_EXEC_ARGS_A", "overridden=with equals"}, {"ASYNCOPS_EXEC_ARGS_C", ""}});
  auto count = [&](const std::string& kv) { return std::count(env.begin(), env.end(), kv); };
  CHECK(count("ASYNCOPS_EXEC_ARGS_A=overridden=with equals") == 1);
  CHECK(count("ASYNCOPS_EXEC_ARGS_A=from-process") == 0);
  CHECK(count("ASYNCOPS_EXEC_ARGS_B=kept") == 1);
  CHECK(count("ASYNCOPS_EXEC_ARGS_C=") == 1);
  ::unsetenv("ASYNCOPS_EXEC_ARGS_A");
  ::unsetenv("ASYNCOPS_EXEC_ARGS_B");
}

TEST_CASE("ExecArgs: a child runs from vectors built before fork", "[exec_args]") {
  ExecArgs argv({"/bin/sh", "-c", "test \"$ASYNCOPS_EXEC_ARGS_D\" = yes && exit 7; exit 1"});
  ExecArgs envp(ExecArgs::environment({{"ASYNCOPS_EXEC_ARGS_D", "yes"}}));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::execve(argv.first(), argv.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 7);
}
