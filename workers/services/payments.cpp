#include "workers/services/payments.h"

#include <chrono>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "workers/services/demo_common.h"

namespace asyncops {
namespace {

using nlohmann::json;

bool card_ends_with(const std::string& card, const char* last4) {
  std::string tail(last4);
  return card.size() >= tail.size() && card.compare(card.size() - tail.size(), tail.size(), tail) == 0;
}

Outcome charge_card(const Command& cmd, ServiceDb& db) {
  const char* rejected = "charge_card_rejected";
  auto card = demo::payload_string(cmd, "card");
  auto qty = demo::payload_integer(cmd, "qty", 1, demo::k_max_qty);
  if (!card) return Outcome::rejected(rejected, "invalid_request", "card must be a string of 1 to 100 bytes");
  if (!qty) return Outcome::rejected(rejected, "invalid_request", "qty must be a whole number from 1 to 1000000");
  if (card_ends_with(*card, "0002")) return Outcome::rejected(rejected, "card_declined", "the card was declined");
  if (card_ends_with(*card, "0009")) {
    // A demo of a slow payment provider: the charge is in hand, and a cancel
    // that comes now finds it running (the saga then refunds it).
    int64_t hold_ms = demo::payload_integer(cmd, "hold_ms", 0, k_demo_max_hold_ms).value_or(k_demo_default_hold_ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
  }
  int64_t amount = *qty * demo::k_unit_price_cents;
  SQLite::Statement& keep = db.prepare("INSERT INTO charges(request_id, card, amount) VALUES (?,?,?)");
  keep.bind(1, cmd.id);
  keep.bind(2, *card);
  keep.bind(3, amount);
  keep.exec();
  demo::append_effect(db, cmd.id, "charge", std::nullopt, std::nullopt, amount);
  return Outcome::completed("card_charged", cmd.resource, json{{"charge", cmd.id}, {"amount", amount}});
}

Outcome refund_card(const Command& cmd, ServiceDb& db) {
  std::string forward = demo::forward_request_id(cmd, "charge");
  SQLite::Statement& find = db.prepare("SELECT card, amount FROM charges WHERE request_id = ? AND refunded_by IS NULL");
  find.bind(1, forward);
  std::optional<std::string> card;
  int64_t amount = 0;
  if (find.executeStep()) {
    card = find.getColumn(0).getString();
    amount = find.getColumn(1).getInt64();
  }
  find.reset();
  // The card of the charge, or the order's when there is no charge to refund.
  std::string which = card ? *card : demo::payload_string(cmd, "card").value_or("");
  if (card_ends_with(which, "0013")) {
    return Outcome::failed("refund_card_failed", "refund_unavailable", "refunds to this card are unavailable");
  }
  if (card) {
    SQLite::Statement& mark = db.prepare("UPDATE charges SET refunded_by = ? WHERE request_id = ?");
    mark.bind(1, cmd.id);
    mark.bind(2, forward);
    mark.exec();
  }
  // Recorded also when there was nothing to refund (amount 0).
  demo::append_effect(db, cmd.id, "refund", std::nullopt, std::nullopt, amount);
  return Outcome::completed("card_refunded", cmd.resource, json{{"charge", forward}, {"refunded", amount}});
}

}  // namespace

Service payments_service() {
  Service s;
  s.name = "payments";
  // Not quick: a charge on a card ending 0009 holds (the slow provider).
  s.init_schema = [](SQLite::Database& db) {
    // refunded_by: the request id of the refund; NULL while charged.
    db.exec(
        "CREATE TABLE IF NOT EXISTS charges(request_id TEXT PRIMARY KEY, card TEXT NOT NULL, "
        "amount INTEGER NOT NULL, refunded_by TEXT) WITHOUT ROWID");
    demo::create_effects_table(db);
  };
  s.handlers["charge_card"] = charge_card;
  s.handlers["refund_card"] = refund_card;
  return s;
}

}  // namespace asyncops
