#pragma once
// The orders demo service (docs/design/sagas.md §10): the orders saga's
// last step, which makes the order, the operation's resource. Its own
// database is DATA_DIR/orders.db. A built-in demo. (examples/orders runs an
// exec service of the same name from its config instead: a [service.orders]
// section wins over the built-in one.)
#include "workers/worker.h"

namespace asyncops {

// The SKU create_order always refuses, so that a saga fails at its last
// step after the charge: {"sku": "gone", ...}.
inline constexpr const char* k_demo_gone_sku = "gone";

// create_order {sku, qty}: makes order params.id. Its amount is the
// `amount` of the first earlier step's data that has one (the charge), else
// qty * 100 cents. Rejected out_of_stock for SKU "gone", order_exists for an
// id already used by another request, invalid_request for a missing id, sku
// or qty. Completed: resource cmd.resource (/orders/{id}), data {"id", "sku",
// "qty", "amount", "status": "created"}, version 1. Effect row: kind "order",
// sku, qty, amount.
Service orders_service();

}  // namespace asyncops
