#pragma once
// What the saga integration tests share (test_saga.cpp,
// test_saga_faults.cpp): the orders saga's routes (examples/orders-saga),
// the demo services' effects tables read back, and the checks that hold
// between those tables and the operations' steps whatever happened
// (docs/design/sagas.md §9).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asyncops::it {

// examples/orders-saga/routes.json, parsed.
nlohmann::json orders_saga_routes();
// The POST /orders route of routes (a reference into it).
nlohmann::json& orders_route(nlohmann::json& routes);
// The step named name of that route.
nlohmann::json& saga_step(nlohmann::json& routes, const std::string& name);

// One row of a demo service's effects table.
struct Effect {
  int64_t seq = 0;
  std::string request_id;
  std::string kind;
  std::string sku;     // "" for NULL
  int64_t qty = -1;    // -1 for NULL
  int64_t amount = -1; // -1 for NULL
};
// DATA_DIR/SERVICE.db's effects, by seq; none if the file or table does not exist yet.
std::vector<Effect> read_effects(const std::string& data_dir, const std::string& service);
// The kinds of the effects of request_id, in order.
std::vector<std::string> kinds_of(const std::vector<Effect>& effects, const std::string& request_id);

// The effects of all three demo services.
struct SagaEffects {
  std::vector<Effect> inventory, payments, orders;
};
SagaEffects read_saga_effects(const std::string& data_dir);

// The checks of docs/design/sagas.md §9 over the effects and the finished
// operations (their documents, with `steps`): each broken rule is one line
// of the result, naming the operation or request id; empty when all hold.
//  - no request id has two effects in a table, and every ".undo" effect's
//    forward id has an effect of the forward kind (no compensation for a
//    step that did not complete), and undoes all of it;
//  - per SKU, units reserved = units released + units in created orders;
//    charged = refunded + the amounts of created orders;
//  - each step has its effect exactly when it is `completed`, and its
//    compensation's effect exactly when that is `completed`; a completed
//    operation has its order, any other has none.
std::vector<std::string> check_saga_invariants(const SagaEffects& effects,
                                               const std::vector<nlohmann::json>& operations);

}  // namespace asyncops::it
