#include "workers/services/users.h"

#include <algorithm>
#include <cctype>

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/clock.h"

namespace asyncops {
namespace {

using nlohmann::json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string user_id(const Command& cmd) {
  auto it = cmd.params.find("id");
  return it != cmd.params.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string string_field(const Command& cmd, const char* key, bool* present) {
  auto it = cmd.payload.find(key);
  *present = it != cmd.payload.end() && it->is_string();
  return *present ? it->get<std::string>() : "";
}

// The user's public representation; *version (if not null) gets its row
// version, which is not part of the representation.
std::optional<json> load_user(ServiceDb& db, const std::string& id, int64_t* version = nullptr) {
  SQLite::Statement& st =
      db.prepare("SELECT id, email, name, created_at, updated_at, version FROM users WHERE id = ?");
  st.bind(1, id);
  if (!st.executeStep()) return std::nullopt;
  json user{{"id", st.getColumn(0).getString()},
            {"email", st.getColumn(1).getString()},
            {"name", st.getColumn(2).getString()},
            {"created_at", st.getColumn(3).getString()},
            {"updated_at", st.getColumn(4).getString()}};
  if (version) *version = st.getColumn(5).getInt64();
  st.reset();
  return user;
}

bool email_taken(ServiceDb& db, const std::string& email, const std::string& except_id) {
  SQLite::Statement& st = db.prepare("SELECT 1 FROM users WHERE email_key = ? AND id != ?");
  st.bind(1, lower(email));
  st.bind(2, except_id);
  bool taken = st.executeStep();
  st.reset();
  return taken;
}

Outcome create_user(const Command& cmd, ServiceDb& db) {
  const char* rejected = "create_user_rejected";
  std::string id = user_id(cmd);
  bool has_email, has_name;
  std::string email = string_field(cmd, "email", &has_email);
  std::string name = string_field(cmd, "name", &has_name);
  if (id.empty()) return Outcome::rejected(rejected, "invalid_command", "the command has no user id");
  if (!has_email || !is_valid_email(email)) {
    return Outcome::rejected(rejected, "invalid_email", "'" + email.substr(0, 254) + "' is not a valid email address");
  }
  if (!has_name || name.empty()) return Outcome::rejected(rejected, "invalid_name", "a name is required");
  if (email_taken(db, email, id)) {
    return Outcome::rejected(rejected, "email_in_use", "the email " + email + " is already in use");
  }
  if (load_user(db, id)) return Outcome::rejected(rejected, "user_exists", "user " + id + " already exists");
  std::string now = format_rfc3339_ms(now_ms());
  SQLite::Statement& ins = db.prepare(
      "INSERT INTO users(id, email, email_key, name, created_at, updated_at, version) "
      "VALUES (?,?,?,?,?,?,1)");
  ins.bind(1, id);
  ins.bind(2, email);
  ins.bind(3, lower(email));
  ins.bind(4, name);
  ins.bind(5, now);
  ins.bind(6, now);
  ins.exec();
  // What load_user would read back, without reading it back.
  json user{{"id", id}, {"email", email}, {"name", name}, {"created_at", now}, {"updated_at", now}};
  Outcome created = Outcome::completed("user_created", "/users/" + id, std::move(user));
  created.version = 1;
  return created;
}

Outcome update_user(const Command& cmd, ServiceDb& db) {
  const char* rejected = "update_user_rejected";
  std::string id = user_id(cmd);
  auto user = load_user(db, id);
  if (!user) return Outcome::rejected(rejected, "user_not_found", "no user " + id);
  bool has_email, has_name;
  std::string email = string_field(cmd, "email", &has_email);
  std::string name = string_field(cmd, "name", &has_name);
  if (has_email) {
    if (!is_valid_email(email)) {
      return Outcome::rejected(rejected, "invalid_email", "'" + email.substr(0, 254) + "' is not a valid email address");
    }
    if (email_taken(db, email, id)) {
      return Outcome::rejected(rejected, "email_in_use", "the email " + email + " is already in use");
    }
  }
  if (has_name && name.empty()) return Outcome::rejected(rejected, "invalid_name", "the name is empty");
  SQLite::Statement& up = db.prepare(
      "UPDATE users SET email = ?, email_key = ?, name = ?, updated_at = ?, version = version + 1 WHERE id = ?");
  std::string new_email = has_email ? email : (*user)["email"].get<std::string>();
  up.bind(1, new_email);
  up.bind(2, lower(new_email));
  up.bind(3, has_name ? name : (*user)["name"].get<std::string>());
  up.bind(4, format_rfc3339_ms(now_ms()));
  up.bind(5, id);
  up.exec();
  int64_t version = 0;
  auto updated = load_user(db, id, &version);
  Outcome o = Outcome::completed("user_updated", "/users/" + id, std::move(*updated));
  o.version = version;
  return o;
}

Outcome delete_user(const Command& cmd, ServiceDb& db) {
  std::string id = user_id(cmd);
  int64_t version = 0;
  if (!load_user(db, id, &version)) return Outcome::rejected("delete_user_rejected", "user_not_found", "no user " + id);
  SQLite::Statement& del = db.prepare("DELETE FROM users WHERE id = ?");
  del.bind(1, id);
  del.exec();
  // The delete is one more write of the user: its version is above every
  // update's, so a late update cannot bring the user back in the read model.
  Outcome o = Outcome::removed("user_deleted", "/users/" + id);
  o.version = version + 1;
  return o;
}

}  // namespace

bool is_valid_email(const std::string& email) {
  if (email.empty() || email.size() > 254) return false;
  auto at = email.find('@');
  if (at == std::string::npos || at == 0 || at > 64 || email.find('@', at + 1) != std::string::npos) {
    return false;
  }
  for (size_t i = 0; i < at; ++i) {
    unsigned char c = static_cast<unsigned char>(email[i]);
    if (c <= ' ' || c >= 0x7f || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
        c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == '"') {
      return false;
    }
  }
  if (email[0] == '.' || email[at - 1] == '.' || email.find("..") != std::string::npos) return false;
  std::string domain = email.substr(at + 1);
  if (domain.size() < 3 || domain.find('.') == std::string::npos) return false;
  size_t start = 0;
  while (start <= domain.size()) {
    size_t dot = domain.find('.', start);
    if (dot == std::string::npos) dot = domain.size();
    std::string label = domain.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      if (!std::isalnum(c) && c != '-') return false;
    }
    start = dot + 1;
  }
  return true;
}

Service users_service() {
  Service s;
  s.name = "users";
  s.quick = true;
  s.init_schema = [](SQLite::Database& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS users("
        "id TEXT PRIMARY KEY, email TEXT NOT NULL, email_key TEXT NOT NULL UNIQUE, "
        "name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, "
        "version INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID");
    // version: raised by every write of the user in the write's own
    // transaction, and sent in its event (docs/protocol.md §5). Added here
    // to databases made before it.
    SQLite::Statement has_version(db, "SELECT 1 FROM pragma_table_info('users') WHERE name = 'version'");
    if (!has_version.executeStep()) db.exec("ALTER TABLE users ADD COLUMN version INTEGER NOT NULL DEFAULT 1");
  };
  s.handlers["create_user"] = create_user;
  s.handlers["update_user"] = update_user;
  s.handlers["delete_user"] = delete_user;
  return s;
}

}  // namespace asyncops
