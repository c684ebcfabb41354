#include "workers/services/peer_job.h"

#include "workers/services/users.h"

namespace asyncops {
namespace {

const std::string* string_member(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

Outcome run_job(const Command& cmd, ServiceDb&) {
  const char* rejected = "run_job_rejected";
  const std::string* id = string_member(cmd.params, "id");
  const std::string* email = string_member(cmd.payload, "email");
  const std::string* name = string_member(cmd.payload, "name");
  if (!id || id->empty()) return Outcome::rejected(rejected, "invalid_command", "the command has no id");
  if (!email || !is_valid_email(*email)) {
    return Outcome::rejected(rejected, "invalid_email", "the email is not a valid address");
  }
  if (!name || name->empty()) return Outcome::rejected(rejected, "invalid_name", "a name is required");
  return Outcome::completed("job_done", cmd.resource, nlohmann::json{{"id", *id}});
}

}  // namespace

Service peer_job_service() {
  Service s;
  s.name = "peer_job";
  s.quick = true;
  s.init_schema = [](SQLite::Database&) {};
  s.handlers["run_job"] = run_job;
  return s;
}

}  // namespace asyncops
