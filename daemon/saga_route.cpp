#include "daemon/saga_route.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "shared/duration.h"

namespace asyncops {
namespace {

using nlohmann::json;

constexpr int k_max_attempts_limit = 100;

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool all_name_chars(const std::string& s) { return std::all_of(s.begin(), s.end(), name_char); }

// A command name: a non-empty string the wire can carry.
Status command_name(const json& step, const char* key, std::string* out) {
  auto it = step.find(key);
  if (it == step.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) {
    return Error{std::string(key) + " must be a non-empty command name"};
  }
  if (it->get_ref<const std::string&>().size() > k_max_id_bytes) {
    return Error{std::string(key) + " is longer than " + std::to_string(k_max_id_bytes) + " bytes"};
  }
  *out = it->get<std::string>();
  return Status::success();
}

}  // namespace

Result<std::vector<saga::StepPlan>> parse_saga_steps(const json& steps, const std::string& route_name,
                                                     const std::string& saga_command,
                                                     const std::vector<std::string>& known_services) {
  if (!steps.is_array() || steps.empty() || steps.size() > saga::k_max_steps) {
    return Error{route_name + ": steps must be an array of 1 to " + std::to_string(saga::k_max_steps) + " steps"};
  }
  static const std::set<std::string> k_keys = {"name", "service", "command", "compensate", "timeout", "max_attempts"};
  std::vector<saga::StepPlan> plan;
  std::set<std::string> names;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    std::string where = route_name + ": steps[" + std::to_string(i) + "]";
    if (!s.is_object()) return Error{where + ": expected an object"};
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!k_keys.count(it.key())) return Error{where + ": unknown key '" + it.key().substr(0, 64) + "'"};
    }
    saga::StepPlan step;
    auto name = s.find("name");
    if (name == s.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
      return Error{where + ": name is required"};
    }
    step.name = name->get<std::string>();
    if (step.name.size() > saga::k_max_step_name || !all_name_chars(step.name)) {
      return Error{where + ": name must be 1 to " + std::to_string(saga::k_max_step_name) +
                   " characters from A-Z, a-z, 0-9, '_' and '-'"};
    }
    where += " (" + step.name + ")";
    if (!names.insert(step.name).second) return Error{where + ": the step name " + step.name + " is used twice"};

    auto service = s.find("service");
    if (service == s.end() || !service->is_string() || service->get_ref<const std::string&>().empty()) {
      return Error{where + ": service is required"};
    }
    step.service = service->get<std::string>();
    if (step.service.size() > k_max_id_bytes || !all_name_chars(step.service)) {
      return Error{where + ": service must be letters, digits, '_' and '-'"};
    }
    if (!known_services.empty() &&
        std::find(known_services.begin(), known_services.end(), step.service) == known_services.end()) {
      return Error{where + ": unknown service " + step.service};
    }
    if (auto st = command_name(s, "command", &step.command); !st) return Error{where + ": " + st.error()};
    if (s.contains("compensate")) {
      if (auto st = command_name(s, "compensate", &step.compensate); !st) return Error{where + ": " + st.error()};
      if (i + 1 == steps.size()) {
        return Error{where + ": the last step cannot have compensate: its completion completes the saga"};
      }
    }
    if (step.command == saga_command || step.compensate == saga_command) {
      return Error{where + ": calls the saga's own command " + saga_command + " (a cycle)"};
    }
    if (s.contains("timeout")) {
      auto timeout = s["timeout"].is_string() ? parse_duration(s["timeout"].get<std::string>())
                                              : Result<std::chrono::milliseconds>(Error{"not a string"});
      if (!timeout || timeout.value().count() <= 0) {
        return Error{where + ": timeout must be a duration such as \"30s\""};
      }
      step.timeout_ms = timeout.value().count();
    }
    if (s.contains("max_attempts")) {
      const json& m = s["max_attempts"];
      if (!m.is_number_integer() || m.get<int64_t>() < 1 || m.get<int64_t>() > k_max_attempts_limit) {
        return Error{where + ": max_attempts must be a whole number from 1 to " + std::to_string(k_max_attempts_limit)};
      }
      step.max_attempts = m.get<int>();
    }
    plan.push_back(std::move(step));
  }
  return plan;
}

std::vector<std::string> saga_services(const std::vector<saga::StepPlan>& plan) {
  std::vector<std::string> out;
  for (const saga::StepPlan& s : plan) {
    if (std::find(out.begin(), out.end(), s.service) == out.end()) out.push_back(s.service);
  }
  return out;
}

}  // namespace asyncops
