#pragma once
// What the built-in demo services of the orders saga (inventory, payments,
// orders: examples/orders-saga, docs/design/sagas.md §10) share: their
// effects log, and reading a command's payload and saga fields.
//
// Every demo service keeps
//   effects(seq INTEGER PRIMARY KEY, request_id TEXT NOT NULL, kind TEXT NOT NULL,
//           sku TEXT, qty INTEGER, amount INTEGER)
// and its handlers append one row per effect in the handler's transaction,
// so a row exists exactly when the effect committed, together with the
// worker's record of the request id (workers/worker.h). Tests and the
// fault-injection checks read these tables to prove "at most one effect per
// request id" and "no undo without its forward effect".
#include <cstdint>
#include <optional>
#include <string>

#include "shared/envelope.h"
#include "workers/service_db.h"

namespace SQLite {
class Database;
}

namespace asyncops::demo {

// The price of one unit of any SKU, in cents: a charge's amount is qty * this.
inline constexpr int64_t k_unit_price_cents = 100;
// The largest qty a demo command accepts.
inline constexpr int64_t k_max_qty = 1000000;
// The largest sku or card a demo command accepts, in bytes.
inline constexpr size_t k_max_field_bytes = 100;

// Creates the effects table (idempotent).
void create_effects_table(SQLite::Database& db);

// Appends one effect row; an absent sku, qty or amount is NULL.
void append_effect(ServiceDb& db, const std::string& request_id, const char* kind,
                   const std::optional<std::string>& sku, std::optional<int64_t> qty,
                   std::optional<int64_t> amount);

// payload[key] as a non-empty string of at most k_max_field_bytes; nullopt otherwise.
std::optional<std::string> payload_string(const Command& cmd, const char* key);
// payload[key] as an integer in [min, max]; nullopt otherwise.
std::optional<int64_t> payload_integer(const Command& cmd, const char* key, int64_t min, int64_t max);

// The request id of the forward step a compensation undoes: the string
// steps[saga.step].data[key] when the daemon sent it (protocol.md §4b),
// else the command's id without its ".undo" suffix (the forward step's id
// by construction, docs/design/sagas.md §2). A command that is not a
// compensation gives its own id without change.
std::string forward_request_id(const Command& cmd, const char* key);

}  // namespace asyncops::demo
