#include "shared/service_config.h"

#include <limits.h>
#include <stdlib.h>

#include <algorithm>
#include <cctype>

#include "shared/duration.h"

namespace asyncops {

bool is_builtin_service_kind(const std::string& kind) {
  for (const char* k : k_builtin_service_kinds) {
    if (kind == k) return true;
  }
  return false;
}
namespace {

// A whole number from lo to hi, or an error saying so.
Result<int> parse_count(const std::string& v, int lo, int hi) {
  Error wrong{"expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi)};
  if (v.empty() || v.size() > 6 || !std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return wrong;
  }
  int n = std::stoi(v);
  if (n < lo || n > hi) return wrong;
  return n;
}

// The directory of path, absolute where it resolves: a service's command
// runs there, whatever the directory of the process that reads the file.
std::string dir_of(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  char resolved[PATH_MAX];
  if (::realpath(dir.c_str(), resolved)) return resolved;
  return dir;
}

}  // namespace

bool valid_service_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

Result<std::vector<ServiceConfig>> load_service_configs(const ConfigFile& file) {
  std::vector<ServiceConfig> out;
  for (const auto& [section, entries] : file.sections) {
    if (section.rfind("service.", 0) != 0) continue;
    ServiceConfig s;
    s.name = section.substr(8);
    s.base_dir = dir_of(file.path);
    auto line_it = file.section_lines.find(section);
    s.line = line_it == file.section_lines.end() ? 0 : line_it->second;
    std::string head = "config " + file.path + ":" + std::to_string(s.line) + ": ";
    if (!valid_service_name(s.name)) {
      return Error{head + "[" + section + "]: a service name is 1 to 64 letters, digits, '_', '-' or '.'"};
    }
    bool has_kind = false;
    for (const ConfigEntry& e : entries) {
      std::string where = "config " + file.path + ":" + std::to_string(e.line) + ": " + e.key + " = " + e.value + ": ";
      const std::string& v = e.value;
      if (e.key == "kind") {
        if (v != "exec" && v != "http" && !is_builtin_service_kind(v)) {
          return Error{where + "expected exec, http, or a built-in service (users, inventory, payments, orders)"};
        }
        s.kind = v;
        has_kind = true;
      } else if (e.key == "command") {
        if (v.empty()) return Error{where + "the command is empty"};
        s.command = v;
      } else if (e.key == "url") {
        if (v.rfind("http://", 0) != 0 && v.rfind("https://", 0) != 0) return Error{where + "expected an http:// or https:// URL"};
        s.url = v;
      } else if (e.key == "method") {
        static const std::vector<std::string> methods = {"GET", "POST", "PUT", "PATCH", "DELETE"};
        if (std::find(methods.begin(), methods.end(), v) == methods.end()) {
          return Error{where + "expected GET, POST, PUT, PATCH or DELETE"};
        }
        s.method = v;
      } else if (e.key == "ca") {
        if (v.empty()) return Error{where + "the CA file is empty"};
        s.ca_file = v[0] == '/' ? v : s.base_dir + "/" + v;
      } else if (e.key == "lines") {
        if (v != "true" && v != "false") return Error{where + "expected true or false"};
        s.lines = v == "true";
      } else if (e.key == "workers") {
        auto n = parse_count(v, 0, 256);
        if (!n) return Error{where + n.error()};
        s.workers = n.value();
      } else if (e.key == "concurrency") {
        auto n = parse_count(v, 1, 1024);
        if (!n) return Error{where + n.error()};
        s.concurrency = n.value();
      } else if (e.key == "attempts") {
        auto n = parse_count(v, 1, 100);
        if (!n) return Error{where + n.error()};
        s.attempts = n.value();
      } else if (e.key == "timeout") {
        auto d = parse_duration(v);
        if (!d || d->count() < 10 || d.value() > std::chrono::hours(24)) {
          return Error{where + "expected a duration from 10ms to 24h, e.g. 30s"};
        }
        s.timeout = d.value();
      } else if (e.key == "backoff") {
        auto d = parse_duration(v);
        if (!d || d.value() > std::chrono::minutes(10)) return Error{where + "expected a duration up to 10m, e.g. 1s"};
        s.backoff = d.value();
      } else if (e.key == "env") {
        auto eq = v.find('=');
        if (eq == std::string::npos || eq == 0) return Error{where + "expected KEY=VALUE"};
        s.env.push_back(v);
      } else {
        return Error{"config " + file.path + ":" + std::to_string(e.line) + ": unknown key '" + e.key + "' in [" +
                     section + "] (known: kind, command, lines, url, method, ca, workers, concurrency, timeout, "
                     "attempts, backoff, env)"};
      }
    }
    if (!has_kind) return Error{head + "[" + section + "] has no kind (users, exec or http)"};
    if (s.kind == "exec" && s.command.empty()) return Error{head + "[" + section + "] is kind exec but has no command"};
    if (s.kind == "http" && s.url.empty()) return Error{head + "[" + section + "] is kind http but has no url"};
    if (s.kind != "exec" && (!s.command.empty() || s.lines)) {
      return Error{head + "[" + section + "]: command and lines are for kind exec"};
    }
    if (s.kind != "http" && (!s.url.empty() || !s.method.empty() || !s.ca_file.empty())) {
      return Error{head + "[" + section + "]: url, method and ca are for kind http"};
    }
    out.push_back(std::move(s));
  }
  std::sort(out.begin(), out.end(), [](const ServiceConfig& a, const ServiceConfig& b) { return a.line < b.line; });
  return out;
}

Result<ServiceConfig> find_service_config(const ConfigFile& file, const std::string& name) {
  auto all = load_service_configs(file);
  if (!all) return Error{all.error()};
  for (auto& s : all.value()) {
    if (s.name == name) return s;
  }
  return Error{"service '" + name + "' is not declared" +
               (file.found ? " in " + file.path + " (no [service." + name + "] section)" : " (no config file)")};
}

Status check_services_match(const std::vector<ServiceConfig>& declared,
                                 const std::vector<std::string>& route_services, const std::string& config_path) {
  for (const auto& s : declared) {
    if (std::find(route_services.begin(), route_services.end(), s.name) == route_services.end()) {
      return Error{"config " + config_path + ":" + std::to_string(s.line) + ": service '" + s.name +
                   "' is declared but no route uses it"};
    }
  }
  for (const auto& r : route_services) {
    bool found = std::any_of(declared.begin(), declared.end(), [&](const ServiceConfig& s) { return s.name == r; });
    if (!found) {
      return Error{"a route uses service '" + r + "', which " + config_path + " does not declare (add a [service." +
                   r + "] section)"};
    }
  }
  return Status::success();
}

}  // namespace asyncops
