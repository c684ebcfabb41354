#include "workers/services/demo_common.h"

#include <SQLiteCpp/SQLiteCpp.h>

namespace asyncops::demo {

void create_effects_table(SQLite::Database& db) {
  db.exec(
      "CREATE TABLE IF NOT EXISTS effects("
      "seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL, kind TEXT NOT NULL, "
      "sku TEXT, qty INTEGER, amount INTEGER)");
}

void append_effect(ServiceDb& db, const std::string& request_id, const char* kind,
                   const std::optional<std::string>& sku, std::optional<int64_t> qty,
                   std::optional<int64_t> amount) {
  SQLite::Statement& st = db.prepare("INSERT INTO effects(request_id, kind, sku, qty, amount) VALUES (?,?,?,?,?)");
  st.bind(1, request_id);
  st.bind(2, kind);
  if (sku) st.bind(3, *sku);
  if (qty) st.bind(4, *qty);
  if (amount) st.bind(5, *amount);
  st.exec();
}

std::optional<std::string> payload_string(const Command& cmd, const char* key) {
  if (!cmd.payload.is_object()) return std::nullopt;
  auto it = cmd.payload.find(key);
  if (it == cmd.payload.end() || !it->is_string()) return std::nullopt;
  const auto& s = it->get_ref<const std::string&>();
  if (s.empty() || s.size() > k_max_field_bytes) return std::nullopt;
  return s;
}

std::optional<int64_t> payload_integer(const Command& cmd, const char* key, int64_t min, int64_t max) {
  if (!cmd.payload.is_object()) return std::nullopt;
  auto it = cmd.payload.find(key);
  if (it == cmd.payload.end() || !it->is_number_integer()) return std::nullopt;
  int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
                  ? INT64_MAX
                  : it->get<int64_t>();
  if (v < min || v > max) return std::nullopt;
  return v;
}

std::string forward_request_id(const Command& cmd, const char* key) {
  if (!cmd.saga.step.empty() && cmd.steps.is_object()) {
    auto step = cmd.steps.find(cmd.saga.step);
    if (step != cmd.steps.end() && step->is_object()) {
      auto data = step->find("data");
      if (data != step->end() && data->is_object()) {
        auto id = data->find(key);
        if (id != data->end() && id->is_string()) return id->get<std::string>();
      }
    }
  }
  static const std::string undo = ".undo";
  if (cmd.id.size() > undo.size() && cmd.id.compare(cmd.id.size() - undo.size(), undo.size(), undo) == 0) {
    return cmd.id.substr(0, cmd.id.size() - undo.size());
  }
  return cmd.id;
}

}  // namespace asyncops::demo
