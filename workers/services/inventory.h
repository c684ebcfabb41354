#pragma once
// The inventory demo service (docs/design/sagas.md §10): stock per SKU in
// its own database (DATA_DIR/inventory.db), reserved by the first step of
// the orders saga and released by its compensation. A built-in demo: it
// moves to an exec handler when those are the usual way to write one.
#include <cstdint>

#include "workers/worker.h"

namespace asyncops {

// A SKU seen for the first time starts with this many units ...
inline constexpr int64_t k_demo_initial_stock = 1000000;
// ... except this one, which starts with none, so that reserve_stock's
// out_of_stock can be tried: {"sku": "sold-out", "qty": 1}.
inline constexpr const char* k_demo_sold_out_sku = "sold-out";

// reserve_stock {sku, qty}: takes qty units of sku; rejected out_of_stock
// when fewer are left, invalid_request for a missing sku or a qty outside
// 1..1,000,000. Completed data: {"reservation": <request id>, "sku", "qty"}.
// Effect row: kind "reserve", sku, qty.
//
// release_stock (the compensation): puts the reservation's units back. The
// reservation is steps[saga.step].data.reservation, or the request id
// without ".undo". Always completed, and always one effect row of kind
// "release" under its own request id: qty is the units put back, or 0 when
// there was nothing to release (no such reservation, or released already
// by another request), so that a check can see every undo and match it to
// its forward effect.
Service inventory_service();

}  // namespace asyncops
