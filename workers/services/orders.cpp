#include "workers/services/orders.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/clock.h"
#include "workers/services/demo_common.h"

namespace asyncops {
namespace {

using nlohmann::json;

// The amount an earlier step charged, if one did.
std::optional<int64_t> charged_amount(const Command& cmd) {
  if (!cmd.steps.is_object()) return std::nullopt;
  for (const auto& step : cmd.steps) {
    if (!step.is_object()) continue;
    auto data = step.find("data");
    if (data == step.end() || !data->is_object()) continue;
    auto amount = data->find("amount");
    if (amount != data->end() && amount->is_number_integer()) return amount->get<int64_t>();
  }
  return std::nullopt;
}

Outcome create_order(const Command& cmd, ServiceDb& db) {
  const char* rejected = "create_order_rejected";
  auto id = cmd.params.is_object() && cmd.params.contains("id") && cmd.params["id"].is_string()
                ? cmd.params["id"].get<std::string>()
                : std::string();
  auto sku = demo::payload_string(cmd, "sku");
  auto qty = demo::payload_integer(cmd, "qty", 1, demo::k_max_qty);
  if (id.empty()) return Outcome::rejected(rejected, "invalid_request", "the command has no order id");
  if (!sku) return Outcome::rejected(rejected, "invalid_request", "sku must be a string of 1 to 100 bytes");
  if (!qty) return Outcome::rejected(rejected, "invalid_request", "qty must be a whole number from 1 to 1000000");
  if (*sku == k_demo_gone_sku) {
    return Outcome::rejected(rejected, "out_of_stock", *sku + " is no longer sold");
  }
  SQLite::Statement& exists = db.prepare("SELECT 1 FROM orders WHERE id = ?");
  exists.bind(1, id);
  bool taken = exists.executeStep();
  exists.reset();
  if (taken) return Outcome::rejected(rejected, "order_exists", "order " + id + " exists already");
  int64_t amount = charged_amount(cmd).value_or(*qty * demo::k_unit_price_cents);
  std::string now = format_rfc3339_ms(now_ms());
  SQLite::Statement& ins = db.prepare(
      "INSERT INTO orders(id, request_id, sku, qty, amount, status, created_at) VALUES (?,?,?,?,?,'created',?)");
  ins.bind(1, id);
  ins.bind(2, cmd.id);
  ins.bind(3, *sku);
  ins.bind(4, *qty);
  ins.bind(5, amount);
  ins.bind(6, now);
  ins.exec();
  demo::append_effect(db, cmd.id, "order", *sku, *qty, amount);
  std::string resource = cmd.resource.empty() ? "/orders/" + id : cmd.resource;
  Outcome o = Outcome::completed(
      "order_created", resource,
      json{{"id", id}, {"sku", *sku}, {"qty", *qty}, {"amount", amount}, {"status", "created"}, {"created_at", now}});
  o.version = 1;
  return o;
}

}  // namespace

Service orders_service() {
  Service s;
  s.name = "orders";
  s.quick = true;
  s.init_schema = [](SQLite::Database& db) {
    db.exec(
        "CREATE TABLE IF NOT EXISTS orders(id TEXT PRIMARY KEY, request_id TEXT NOT NULL, sku TEXT NOT NULL, "
        "qty INTEGER NOT NULL, amount INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL) WITHOUT ROWID");
    demo::create_effects_table(db);
  };
  s.handlers["create_order"] = create_order;
  return s;
}

}  // namespace asyncops
