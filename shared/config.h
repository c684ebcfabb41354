#pragma once
// The asyncops configuration file (see asyncops.conf(5)): `key = value`
// lines in [cli], [daemon], [worker] and [service.NAME] sections (the last
// read by shared/service_config.h), `#` comments. Precedence
// everywhere: command-line flag > ASYNCOPS_* environment variable > file >
// built-in default.
//
// CLI11's own set_config() is not used: CLI11 2.1.2 reads the config file
// before the environment, which would let the file beat ASYNCOPS_* variables.
#include <map>
#include <string>
#include <vector>

#include "shared/result.h"

namespace CLI {
class App;
}

namespace asyncops {

struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0;
};

struct ConfigFile {
  std::string path;    // the file looked for ("" when none)
  bool found = false;  // false: no such file (fine for the default path)
  std::map<std::string, std::vector<ConfigEntry>> sections;  // section -> entries in file order
  std::map<std::string, int> section_lines;                  // section -> line of its (first) header
  const std::vector<ConfigEntry>* section(const std::string& name) const {
    auto it = sections.find(name);
    return it == sections.end() ? nullptr : &it->second;
  }
};

// $ASYNCOPS_CONFIG, else $XDG_CONFIG_HOME/asyncops/asyncops.conf, else
// ~/.config/asyncops/asyncops.conf.
std::string default_config_path();

// Reads and checks the syntax of a config file. A missing file is fine
// unless must_exist (an explicit --config or $ASYNCOPS_CONFIG). Errors name
// the file, line and key.
Result<ConfigFile> load_config(const std::string& path, bool must_exist);

// One effective setting and where it came from: default, file, env or flag.
struct Setting {
  std::string key;  // the file key: the long flag with '_' for '-'
  std::string value;
  std::string source;
};

// Call after app.parse(args). Every long option of app (except those in
// `ignore`) may be set in the given section as a key (--max-attempts is
// max_attempts); a value from the file is applied, through the option's own
// validators, only to options given neither as a flag nor by environment.
// Returns every setting with its source, or a one-line error naming the key
// (unknown key, or a value the option refuses).
Result<std::vector<Setting>> apply_config_section(CLI::App& app, const ConfigFile& file,
                                                  const std::string& section,
                                                  const std::vector<std::string>& args,
                                                  const std::vector<std::string>& ignore);

// A program's config file: flag_path (its --config) when not empty, else
// default_config_path(). The file must exist when named by --config or
// $ASYNCOPS_CONFIG; the default path may be missing (found is then false).
Result<ConfigFile> load_program_config(const std::string& flag_path);

// The configuration step of asyncopsd and asyncops-worker, after
// app.parse(args): load_program_config(flag_path), then that file's
// section applied to app (apply_config_section). An error names the file,
// line and key.
struct AppliedConfig {
  ConfigFile file;
  std::vector<Setting> settings;
};
Result<AppliedConfig> apply_program_config(CLI::App& app, const std::string& flag_path, const std::string& section,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& ignore);

}  // namespace asyncops
