#pragma once
// The payments demo service (docs/design/sagas.md §10): charges and refunds
// in its own database (DATA_DIR/payments.db), for the orders saga's second
// step and its compensation. A built-in demo: no money moves.
#include <cstdint>

#include "workers/worker.h"

namespace asyncops {

// How long charge_card holds a card ending 0009 before it charges it, unless
// the payload's hold_ms (0 to k_demo_max_hold_ms) says otherwise.
inline constexpr int64_t k_demo_default_hold_ms = 3000;
inline constexpr int64_t k_demo_max_hold_ms = 10000;

// charge_card {card, qty[, hold_ms]}: charges qty * 100 cents
// (demo::k_unit_price_cents) to card. By the card's last four digits:
//   0002  rejected card_declined;
//   0009  held: the handler sleeps hold_ms (default 3 s, at most 10 s) and
//         then charges, so that a client can cancel while the charge runs.
//         It sleeps inside the worker's transaction, so the payments
//         database is held meanwhile: a demo, not a model;
//   else  charged.
// Rejected invalid_request for a missing card or a qty outside 1..1,000,000.
// Completed data: {"charge": <request id>, "amount"}. Effect row: kind
// "charge", amount.
//
// refund_card (the compensation): refunds the charge named by
// steps[saga.step].data.charge, or the request id without ".undo". For a
// card ending 0013 it always fails: failed/refund_unavailable, no effect.
// Otherwise completed, with one effect row of kind "refund" under its own
// request id: amount is what was refunded, or 0 when there was nothing to
// refund (no such charge, or refunded already by another request).
Service payments_service();

}  // namespace asyncops
