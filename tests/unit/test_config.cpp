// shared/config.h: the config file's syntax and its place in the precedence
// flag > ASYNCOPS_* environment > file > default.
#include <catch2/catch.hpp>

#include <stdlib.h>

#include <fstream>

#include <CLI/CLI.hpp>

#include "shared/config.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {

// An environment variable set for one test's scope, and removed after.
struct ScopedEnv {
  std::string name;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) { ::setenv(name.c_str(), value.c_str(), 1); }
  ~ScopedEnv() { ::unsetenv(name.c_str()); }
};

std::string write_file(const TempDir& dir, const std::string& text) {
  std::string path = dir.path + "/asyncops.conf";
  std::ofstream(path) << text;
  return path;
}

// A program with three options, each with an ASYNCOPS_UNIT_* variable.
struct Program {
  CLI::App app{"unit"};
  std::string color = "red";
  int size = 1;
  std::string shape = "round";
  std::vector<std::string> args;
  explicit Program(std::vector<std::string> a) : args(std::move(a)) {
    app.add_option("--color", color)->envname("ASYNCOPS_UNIT_COLOR");
    app.add_option("--size", size)->envname("ASYNCOPS_UNIT_SIZE")->check(CLI::Range(1, 10));
    app.add_option("--shape", shape)->envname("ASYNCOPS_UNIT_SHAPE");
    app.add_option("--config", config);
    for (CLI::Option* opt : app.get_options()) opt->capture_default_str();
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);
  }
  std::string config;
  Result<std::vector<Setting>> apply(const ConfigFile& file) {
    return apply_config_section(app, file, "daemon", args, {"config"});
  }
};

// Writes text as a config file and applies its [daemon] section to p.
Result<std::vector<Setting>> apply_text(Program& p, const std::string& text) {
  TempDir dir;
  auto file = load_config(write_file(dir, text), true);
  REQUIRE(file);
  return p.apply(file.value());
}

std::string source_of(const std::vector<Setting>& settings, const std::string& key) {
  for (const auto& s : settings) {
    if (s.key == key) return s.source;
  }
  return "(none)";
}

}  // namespace

TEST_CASE("config precedence: flag beats environment beats file beats default", "[config]") {
  ScopedEnv color_env("ASYNCOPS_UNIT_COLOR", "env");
  ScopedEnv size_env("ASYNCOPS_UNIT_SIZE", "7");
  Program p({"--color", "flag"});
  auto settings = apply_text(p, "[daemon]\ncolor = file\nsize = 5\nshape = \"square\"\n");
  REQUIRE(settings);
  CHECK(p.color == "flag");  // flag over env and file
  CHECK(source_of(settings.value(), "color") == "flag");
  CHECK(p.size == 7);  // env over file
  CHECK(source_of(settings.value(), "size") == "env");
  CHECK(p.shape == "square");  // file over default, quotes removed
  CHECK(source_of(settings.value(), "shape") == "file");
}

TEST_CASE("config: an option set nowhere keeps its default and says so", "[config]") {
  ConfigFile empty;
  Program p({});
  auto settings = p.apply(empty);
  REQUIRE(settings);
  CHECK(p.color == "red");
  CHECK(source_of(settings.value(), "color") == "default");
  CHECK(source_of(settings.value(), "config") == "(none)");  // ignored keys are not listed
}

TEST_CASE("config: a --flag=value counts as a flag", "[config]") {
  Program p({"--color=flag"});
  auto settings = apply_text(p, "[daemon]\ncolor = file\n");
  REQUIRE(settings);
  CHECK(p.color == "flag");
  CHECK(source_of(settings.value(), "color") == "flag");
}

TEST_CASE("config: a file value goes through the option's own validator", "[config]") {
  Program p({});
  auto settings = apply_text(p, "[daemon]\n\nsize = 11\n");
  REQUIRE_FALSE(settings);
  CHECK(settings.error().find(":3: size = 11") != std::string::npos);
}

TEST_CASE("config: an unknown key in the program's section is an error naming its line", "[config]") {
  Program p({});
  auto settings = apply_text(p, "# comment\n[daemon]\nflavour = x\n[worker]\nother = y\n");
  REQUIRE_FALSE(settings);
  CHECK(settings.error().find(":3: unknown key 'flavour' in [daemon]") != std::string::npos);
}

TEST_CASE("config syntax errors name the file and line", "[config]") {
  TempDir dir;
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : {Case{"[daemon\n", ":1: a section header"}, Case{"[nope]\n", ":1: unknown section [nope]"},
                        Case{"[daemon]\njust words\n", ":2: expected key = value"},
                        Case{"[daemon]\nBad-Key = 1\n", ":2: bad key 'Bad-Key'"},
                        Case{"color = 1\n", ":1: key 'color' is outside a section"}}) {
    auto file = load_config(write_file(dir, c.text), true);
    INFO(c.text);
    REQUIRE_FALSE(file);
    CHECK(file.error().find(c.error) != std::string::npos);
  }
}

TEST_CASE("config: a missing file is fine at the default path, an error when named", "[config]") {
  TempDir dir;
  auto missing = load_config(dir.path + "/nope.conf", false);
  REQUIRE(missing);
  CHECK_FALSE(missing->found);
  CHECK_FALSE(load_config(dir.path + "/nope.conf", true));
  {
    ScopedEnv config_env("ASYNCOPS_CONFIG", dir.path + "/nope.conf");
    CHECK(default_config_path() == dir.path + "/nope.conf");
    CHECK_FALSE(load_program_config(""));  // named by $ASYNCOPS_CONFIG: must exist
  }
  CHECK_FALSE(load_program_config(dir.path + "/nope.conf"));  // named by --config
}

TEST_CASE("config: the program's bootstrap applies its section of the named file", "[config]") {
  TempDir dir;
  std::string path = write_file(dir, "[daemon]\ncolor = file\n[worker]\ncolor = other\n");
  Program p({"--config", path});
  auto applied = apply_program_config(p.app, path, "daemon", p.args, {"config"});
  REQUIRE(applied);
  CHECK(applied->file.found);
  CHECK(applied->file.path == path);
  CHECK(p.color == "file");
  CHECK(source_of(applied->settings, "color") == "file");
}
