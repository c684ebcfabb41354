#pragma once
// The orders saga of docs/design/sagas.md §1 as the store and committer
// tests use it: its plan, an operation for it, and a worker's step event.
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/ids.h"
#include "store/operation.h"
#include "store/saga.h"

namespace asyncops::test {

inline std::vector<saga::StepPlan> order_plan() {
  return {{"reserve", "inventory", "reserve_stock", "release_stock", 0, 0},
          {"charge", "payments", "charge_card", "refund_card", 10000, 3},
          {"create", "orders", "create_order", "", 0, 0}};
}

inline OperationRecord order_op() {
  OperationRecord op;
  op.id = new_uuid_v7();
  op.name = "place_order";
  op.service = "orders";
  op.origin = "POST /orders";
  op.resource = "/orders/" + new_uuid_v7();
  op.params = {{"id", op.resource.substr(8)}};
  op.payload = {{"sku", "apple"}, {"qty", 2}, {"card", "4000000000000001"}};
  op.created_at = op.updated_at = now_ms();
  return op;
}

inline Event step_event(const std::string& request_id, OpState state, const std::string& code = "",
                        nlohmann::json data = nullptr) {
  Event e;
  e.request_id = request_id;
  e.state = state;
  e.code = code;
  e.data = std::move(data);
  e.worker = "w1";
  return e;
}

}  // namespace asyncops::test
