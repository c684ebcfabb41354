#include "workers/services/inventory.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "workers/services/demo_common.h"

namespace asyncops {
namespace {

using nlohmann::json;

Outcome reserve_stock(const Command& cmd, ServiceDb& db) {
  const char* rejected = "reserve_stock_rejected";
  auto sku = demo::payload_string(cmd, "sku");
  auto qty = demo::payload_integer(cmd, "qty", 1, demo::k_max_qty);
  if (!sku) return Outcome::rejected(rejected, "invalid_request", "sku must be a string of 1 to 100 bytes");
  if (!qty) return Outcome::rejected(rejected, "invalid_request", "qty must be a whole number from 1 to 1000000");
  SQLite::Statement& seed = db.prepare("INSERT OR IGNORE INTO stock(sku, available) VALUES (?,?)");
  seed.bind(1, *sku);
  seed.bind(2, *sku == k_demo_sold_out_sku ? int64_t{0} : k_demo_initial_stock);
  seed.exec();
  SQLite::Statement& get = db.prepare("SELECT available FROM stock WHERE sku = ?");
  get.bind(1, *sku);
  get.executeStep();
  int64_t available = get.getColumn(0).getInt64();
  get.reset();
  if (available < *qty) {
    return Outcome::rejected(rejected, "out_of_stock",
                             *sku + ": " + std::to_string(available) + " left, " + std::to_string(*qty) + " asked");
  }
  SQLite::Statement& take = db.prepare("UPDATE stock SET available = available - ? WHERE sku = ?");
  take.bind(1, *qty);
  take.bind(2, *sku);
  take.exec();
  SQLite::Statement& keep = db.prepare("INSERT INTO reservations(request_id, sku, qty) VALUES (?,?,?)");
  keep.bind(1, cmd.id);
  keep.bind(2, *sku);
  keep.bind(3, *qty);
  keep.exec();
  demo::append_effect(db, cmd.id, "reserve", *sku, *qty, std::nullopt);
  return Outcome::completed("stock_reserved", cmd.resource, json{{"reservation", cmd.id}, {"sku", *sku}, {"qty", *qty}});
}

Outcome release_stock(const Command& cmd, ServiceDb& db) {
  std::string forward = demo::forward_request_id(cmd, "reservation");
  SQLite::Statement& find = db.prepare("SELECT sku, qty FROM reservations WHERE request_id = ? AND released_by IS NULL");
  find.bind(1, forward);
  std::optional<std::string> sku;
  int64_t qty = 0;
  if (find.executeStep()) {
    sku = find.getColumn(0).getString();
    qty = find.getColumn(1).getInt64();
  }
  find.reset();
  if (sku) {
    SQLite::Statement& put_back = db.prepare("UPDATE stock SET available = available + ? WHERE sku = ?");
    put_back.bind(1, qty);
    put_back.bind(2, *sku);
    put_back.exec();
    SQLite::Statement& mark = db.prepare("UPDATE reservations SET released_by = ? WHERE request_id = ?");
    mark.bind(1, cmd.id);
    mark.bind(2, forward);
    mark.exec();
  }
  // Recorded also when there was nothing to put back (qty 0).
  demo::append_effect(db, cmd.id, "release", sku, qty, std::nullopt);
  json data{{"reservation", forward}, {"released", qty}};
  if (sku) data["sku"] = *sku;
  return Outcome::completed("stock_released", cmd.resource, std::move(data));
}

}  // namespace

Service inventory_service() {
  Service s;
  s.name = "inventory";
  s.quick = true;
  s.init_schema = [](SQLite::Database& db) {
    db.exec("CREATE TABLE IF NOT EXISTS stock(sku TEXT PRIMARY KEY, available INTEGER NOT NULL) WITHOUT ROWID");
    // released_by: the request id of the release that put it back; NULL
    // while the units are held.
    db.exec(
        "CREATE TABLE IF NOT EXISTS reservations(request_id TEXT PRIMARY KEY, sku TEXT NOT NULL, "
        "qty INTEGER NOT NULL, released_by TEXT) WITHOUT ROWID");
    demo::create_effects_table(db);
  };
  s.handlers["reserve_stock"] = reserve_stock;
  s.handlers["release_stock"] = release_stock;
  return s;
}

}  // namespace asyncops
