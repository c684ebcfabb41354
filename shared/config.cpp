#include "shared/config.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <CLI/CLI.hpp>

namespace asyncops {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

bool valid_key(const std::string& k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

// Was --name given on the command line (as --name V or --name=V)?
bool given_as_flag(const std::vector<std::string>& args, const std::string& lname) {
  std::string flag = "--" + lname;
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

std::string joined_results(const CLI::Option* opt) {
  std::string v;
  for (const auto& r : opt->results()) v += (v.empty() ? "" : ",") + r;
  return v;
}

}  // namespace

std::string default_config_path() {
  if (const char* c = std::getenv("ASYNCOPS_CONFIG"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/asyncops/asyncops.conf";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/asyncops/asyncops.conf";
}

Result<ConfigFile> load_config(const std::string& path, bool must_exist) {
  ConfigFile f;
  f.path = path;
  if (path.empty()) return f;
  std::ifstream in(path);
  if (!in) {
    if (!must_exist && ::access(path.c_str(), F_OK) != 0) return f;
    return Error{"config " + path + ": cannot read the file"};
  }
  // A local file, but a huge one must not take the memory (issue 15).
  constexpr std::streamoff k_max_config_bytes = 1 << 20;
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size > k_max_config_bytes) {
    return Error{"config " + path + ": the file is " + std::to_string(size) + " bytes, more than the limit of " +
                 std::to_string(k_max_config_bytes)};
  }
  in.clear();
  in.seekg(0, std::ios::beg);
  f.found = true;
  static const std::vector<std::string> k_sections = {"cli", "daemon", "worker"};
  std::string section, line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::string where = "config " + path + ":" + std::to_string(n) + ": ";
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      if (t.back() != ']') return Error{where + "a section header must look like [daemon]"};
      section = trim(t.substr(1, t.size() - 2));
      bool service = section.rfind("service.", 0) == 0 && section.size() > 8;
      if (!service && std::find(k_sections.begin(), k_sections.end(), section) == k_sections.end()) {
        return Error{where + "unknown section [" + section + "] (known: [cli], [daemon], [worker], [service.NAME])"};
      }
      f.sections[section];
      f.section_lines.emplace(section, n);
      continue;
    }
    auto eq = t.find('=');
    if (eq == std::string::npos) return Error{where + "expected key = value"};
    std::string key = trim(t.substr(0, eq));
    std::string value = trim(t.substr(eq + 1));
    if (!valid_key(key)) return Error{where + "bad key '" + key + "' (lower case letters, digits and _)"};
    if (section.empty()) return Error{where + "key '" + key + "' is outside a section; put it under [cli], [daemon] or [worker]"};
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    f.sections[section].push_back({key, value, n});
  }
  return f;
}

Result<std::vector<Setting>> apply_config_section(CLI::App& app, const ConfigFile& file,
                                                  const std::string& section,
                                                  const std::vector<std::string>& args,
                                                  const std::vector<std::string>& ignore) {
  // Keys from the file, checked against the app's options first.
  std::map<std::string, std::vector<const ConfigEntry*>> from_file;
  if (const auto* entries = file.section(section)) {
    for (const auto& e : *entries) {
      std::string lname = e.key;
      std::replace(lname.begin(), lname.end(), '_', '-');
      bool known = std::find(ignore.begin(), ignore.end(), lname) == ignore.end() &&
                   app.get_option_no_throw("--" + lname) != nullptr;
      if (!known) {
        return Error{"config " + file.path + ":" + std::to_string(e.line) + ": unknown key '" + e.key +
                     "' in [" + section + "]"};
      }
      from_file[lname].push_back(&e);
    }
  }
  std::vector<Setting> out;
  for (CLI::Option* opt : app.get_options()) {
    if (opt->get_lnames().empty()) continue;
    const std::string& lname = opt->get_lnames().front();
    if (std::find(ignore.begin(), ignore.end(), lname) != ignore.end()) continue;
    if (lname == "help" || lname == "version") continue;
    std::string key = lname;
    std::replace(key.begin(), key.end(), '-', '_');
    Setting s{key, "", "default"};
    const std::string& env = opt->get_envname();
    const char* env_value = env.empty() ? nullptr : std::getenv(env.c_str());
    if (opt->count() > 0 && given_as_flag(args, lname)) {
      s.source = "flag";
      s.value = joined_results(opt);
    } else if (opt->count() > 0 && env_value) {
      s.source = "env";
      s.value = joined_results(opt);
    } else if (from_file.count(lname)) {
      for (const ConfigEntry* e : from_file[lname]) opt->add_result(e->value);
      try {
        opt->run_callback();
      } catch (const CLI::Error& err) {
        const ConfigEntry* e = from_file[lname].back();
        return Error{"config " + file.path + ":" + std::to_string(e->line) + ": " + e->key + " = " + e->value +
                     ": " + err.what()};
      }
      s.source = "file";
      s.value = joined_results(opt);
    } else {
      s.value = opt->get_default_str();
    }
    out.push_back(s);
  }
  return out;
}

Result<ConfigFile> load_program_config(const std::string& flag_path) {
  bool must_exist = !flag_path.empty() || std::getenv("ASYNCOPS_CONFIG") != nullptr;
  return load_config(flag_path.empty() ? default_config_path() : flag_path, must_exist);
}

Result<AppliedConfig> apply_program_config(CLI::App& app, const std::string& flag_path, const std::string& section,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& ignore) {
  auto file = load_program_config(flag_path);
  if (!file) return Error{file.error()};
  auto settings = apply_config_section(app, file.value(), section, args, ignore);
  if (!settings) return Error{settings.error()};
  return AppliedConfig{std::move(file.value()), std::move(settings.value())};
}

}  // namespace asyncops
