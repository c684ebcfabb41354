// The built-in demo services of the orders saga (workers/services/
// inventory, payments, orders; docs/design/sagas.md §10), run through
// Worker::handle on a temp database as the worker loop runs them.
#include <catch2/catch.hpp>

#include <chrono>

#include <SQLiteCpp/SQLiteCpp.h>

#include "shared/ids.h"
#include "store_fixture.h"
#include "workers/services/demo_common.h"
#include "workers/services/inventory.h"
#include "workers/services/orders.h"
#include "workers/services/payments.h"
#include "workers/worker.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

// One service on its own database, and the commands of one saga operation.
struct Demo {
  TempDir dir;
  Service svc;
  SQLite::Database db;
  std::string op = new_uuid_v7();
  std::string order = new_uuid_v7();
  explicit Demo(Service s)
      : svc(std::move(s)), db(dir.path + "/" + svc.name + ".db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE) {
    Worker::init_database(svc, db);
  }

  // Step `step` of the operation (its compensation when undo), as the
  // daemon sends it (protocol.md §4b).
  Command step(const std::string& name, const std::string& step, json payload, json steps = json::object(),
               bool undo = false) {
    Command c;
    c.id = op + "." + step + (undo ? ".undo" : "");
    c.name = name;
    c.service = svc.name;
    c.origin = "POST /orders";
    c.resource = "/orders/" + order;
    c.params = {{"id", order}};
    c.payload = std::move(payload);
    c.saga = {op, step, undo};
    c.steps = std::move(steps);
    return c;
  }
  Event run(const Command& c) { return Worker::handle(svc, db, c, "w"); }

  // The effects rows as [request_id, kind, sku, qty, amount] (null for NULL).
  std::vector<json> effects() {
    std::vector<json> out;
    SQLite::Statement st(db, "SELECT request_id, kind, sku, qty, amount FROM effects ORDER BY seq");
    while (st.executeStep()) {
      json row = json::array();
      row.push_back(st.getColumn(0).getString());
      row.push_back(st.getColumn(1).getString());
      row.push_back(st.getColumn(2).isNull() ? json(nullptr) : json(st.getColumn(2).getString()));
      row.push_back(st.getColumn(3).isNull() ? json(nullptr) : json(st.getColumn(3).getInt64()));
      row.push_back(st.getColumn(4).isNull() ? json(nullptr) : json(st.getColumn(4).getInt64()));
      out.push_back(row);
    }
    return out;
  }
  int64_t stock(const std::string& sku) {
    SQLite::Statement st(db, "SELECT available FROM stock WHERE sku = ?");
    st.bind(1, sku);
    return st.executeStep() ? st.getColumn(0).getInt64() : -1;
  }
  bool handled(const std::string& request_id) {
    SQLite::Statement st(db, "SELECT 1 FROM handled WHERE request_id = ?");
    st.bind(1, request_id);
    return st.executeStep();
  }
};

}  // namespace

TEST_CASE("the demo services are built in by name", "[demo_services]") {
  for (const char* name : {"inventory", "payments", "orders", "users"}) {
    const Service* s = find_service(name);
    REQUIRE(s != nullptr);
    CHECK(s->name == name);
  }
  CHECK(find_service("inventory")->handlers.count("reserve_stock") == 1);
  CHECK(find_service("inventory")->handlers.count("release_stock") == 1);
  CHECK(find_service("payments")->handlers.count("charge_card") == 1);
  CHECK(find_service("payments")->handlers.count("refund_card") == 1);
  CHECK(find_service("orders")->handlers.count("create_order") == 1);
}

TEST_CASE("reserve_stock takes the units from a new SKU's large stock and records one reserve effect",
          "[demo_services]") {
  Demo d(inventory_service());
  Command c = d.step("reserve_stock", "reserve", {{"sku", "apple"}, {"qty", 3}});
  Event e = d.run(c);
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "stock_reserved");
  CHECK(e.request_id == d.op + ".reserve");
  CHECK(e.data == json{{"reservation", d.op + ".reserve"}, {"sku", "apple"}, {"qty", 3}});
  CHECK(d.stock("apple") == k_demo_initial_stock - 3);
  CHECK(d.effects() == std::vector<json>{{d.op + ".reserve", "reserve", "apple", 3, nullptr}});
  // The effect and the dedupe record committed together.
  CHECK(d.handled(c.id));

  SECTION("a redelivery re-publishes the outcome and takes nothing more") {
    c.attempt = 2;
    Event again = d.run(c);
    CHECK(again.state == OpState::completed);
    CHECK(again.data == e.data);
    CHECK(again.attempt == 2);
    CHECK(d.stock("apple") == k_demo_initial_stock - 3);
    CHECK(d.effects().size() == 1);
  }
}

TEST_CASE("reserve_stock rejects out_of_stock for the sold-out SKU and past the stock, with no effect",
          "[demo_services]") {
  Demo d(inventory_service());
  Event e = d.run(d.step("reserve_stock", "reserve", {{"sku", k_demo_sold_out_sku}, {"qty", 1}}));
  CHECK(e.state == OpState::rejected);
  CHECK(e.code == "out_of_stock");
  CHECK(e.message == "sold-out: 0 left, 1 asked");
  CHECK(d.effects().empty());

  Demo big(inventory_service());
  CHECK(big.run(big.step("reserve_stock", "reserve", {{"sku", "pear"}, {"qty", k_demo_initial_stock}})).state ==
        OpState::completed);
  big.op = new_uuid_v7();
  Event over = big.run(big.step("reserve_stock", "reserve", {{"sku", "pear"}, {"qty", 1}}));
  CHECK(over.code == "out_of_stock");
  CHECK(big.stock("pear") == 0);
  CHECK(big.effects().size() == 1);
}

TEST_CASE("reserve_stock rejects a missing sku or a bad qty as invalid_request", "[demo_services]") {
  Demo d(inventory_service());
  for (json payload : {json{{"qty", 1}}, json{{"sku", ""}, {"qty", 1}}, json{{"sku", "a"}, {"qty", 0}},
                       json{{"sku", "a"}, {"qty", "1"}}, json{{"sku", "a"}, {"qty", 1000001}},
                       json{{"sku", std::string(101, 'a')}, {"qty", 1}}}) {
    d.op = new_uuid_v7();
    Event e = d.run(d.step("reserve_stock", "reserve", payload));
    INFO(payload.dump());
    CHECK(e.state == OpState::rejected);
    CHECK(e.code == "invalid_request");
  }
  CHECK(d.effects().empty());
}

TEST_CASE("release_stock puts the reservation back and records a release under its own id", "[demo_services]") {
  Demo d(inventory_service());
  Event reserved = d.run(d.step("reserve_stock", "reserve", {{"sku", "apple"}, {"qty", 5}}));
  REQUIRE(reserved.state == OpState::completed);
  json steps{{"reserve", {{"data", reserved.data}}}};
  Event released = d.run(d.step("release_stock", "reserve", {{"sku", "apple"}, {"qty", 5}}, steps, true));
  CHECK(released.state == OpState::completed);
  CHECK(released.request_id == d.op + ".reserve.undo");
  CHECK(released.data["released"] == 5);
  CHECK(d.stock("apple") == k_demo_initial_stock);
  CHECK(d.effects() == std::vector<json>{{d.op + ".reserve", "reserve", "apple", 5, nullptr},
                                         {d.op + ".reserve.undo", "release", "apple", 5, nullptr}});

  SECTION("a second release of the same reservation is a recorded no-op") {
    Command other = d.step("release_stock", "reserve", {}, steps, true);
    other.id = new_uuid_v7();  // another request naming the same reservation
    Event again = d.run(other);
    CHECK(again.state == OpState::completed);
    CHECK(again.data["released"] == 0);
    CHECK(d.stock("apple") == k_demo_initial_stock);
    REQUIRE(d.effects().size() == 3);
    CHECK(d.effects()[2] == json{other.id, "release", nullptr, 0, nullptr});
  }
}

TEST_CASE("release_stock without steps data finds the reservation by the forward request id",
          "[demo_services]") {
  Demo d(inventory_service());
  REQUIRE(d.run(d.step("reserve_stock", "reserve", {{"sku", "fig"}, {"qty", 2}})).state == OpState::completed);
  Event released = d.run(d.step("release_stock", "reserve", {}, json::object(), true));
  CHECK(released.state == OpState::completed);
  CHECK(released.data["reservation"] == d.op + ".reserve");
  CHECK(released.data["released"] == 2);
  CHECK(d.stock("fig") == k_demo_initial_stock);
}

TEST_CASE("release_stock of a reservation that never happened records a release of 0", "[demo_services]") {
  Demo d(inventory_service());
  Event released = d.run(d.step("release_stock", "reserve", {{"sku", "apple"}, {"qty", 5}}, json::object(), true));
  CHECK(released.state == OpState::completed);
  CHECK(released.data["released"] == 0);
  CHECK(d.effects() == std::vector<json>{{d.op + ".reserve.undo", "release", nullptr, 0, nullptr}});
}

TEST_CASE("charge_card charges qty times the unit price and records one charge effect", "[demo_services]") {
  Demo d(payments_service());
  Event e = d.run(d.step("charge_card", "charge", {{"sku", "apple"}, {"qty", 3}, {"card", "4000000000000001"}}));
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "card_charged");
  CHECK(e.data == json{{"charge", d.op + ".charge"}, {"amount", 3 * demo::k_unit_price_cents}});
  CHECK(d.effects() == std::vector<json>{{d.op + ".charge", "charge", nullptr, nullptr, 300}});
}

TEST_CASE("charge_card declines a card ending 0002 with card_declined and no effect", "[demo_services]") {
  Demo d(payments_service());
  Event e = d.run(d.step("charge_card", "charge", {{"qty", 1}, {"card", "4000000000000002"}}));
  CHECK(e.state == OpState::rejected);
  CHECK(e.code == "card_declined");
  CHECK(d.effects().empty());
}

TEST_CASE("charge_card holds a card ending 0009 for hold_ms and then charges it", "[demo_services]") {
  Demo d(payments_service());
  auto started = std::chrono::steady_clock::now();
  Event e = d.run(d.step("charge_card", "charge", {{"qty", 1}, {"card", "4000000000000009"}, {"hold_ms", 200}}));
  CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(200));
  CHECK(e.state == OpState::completed);
  CHECK(d.effects().size() == 1);
}

TEST_CASE("refund_card refunds the charge once and records a refund under its own id", "[demo_services]") {
  Demo d(payments_service());
  json payload{{"qty", 2}, {"card", "4000000000000001"}};
  Event charged = d.run(d.step("charge_card", "charge", payload));
  REQUIRE(charged.state == OpState::completed);
  json steps{{"charge", {{"data", charged.data}}}};
  Event refunded = d.run(d.step("refund_card", "charge", payload, steps, true));
  CHECK(refunded.state == OpState::completed);
  CHECK(refunded.data["refunded"] == 200);
  Command other = d.step("refund_card", "charge", payload, steps, true);
  other.id = new_uuid_v7();
  CHECK(d.run(other).data["refunded"] == 0);
  CHECK(d.effects() == std::vector<json>{{d.op + ".charge", "charge", nullptr, nullptr, 200},
                                         {d.op + ".charge.undo", "refund", nullptr, nullptr, 200},
                                         {other.id, "refund", nullptr, nullptr, 0}});
}

TEST_CASE("refund_card always fails refund_unavailable for a card ending 0013, with no effect", "[demo_services]") {
  Demo d(payments_service());
  json payload{{"qty", 1}, {"card", "4000000000000013"}};
  Event charged = d.run(d.step("charge_card", "charge", payload));
  REQUIRE(charged.state == OpState::completed);
  json steps{{"charge", {{"data", charged.data}}}};
  Event refund = d.run(d.step("refund_card", "charge", payload, steps, true));
  CHECK(refund.state == OpState::failed);
  CHECK(refund.code == "refund_unavailable");
  CHECK(d.effects().size() == 1);  // the charge only
}

TEST_CASE("create_order makes the order as the operation's resource with the charged amount", "[demo_services]") {
  Demo d(orders_service());
  json steps{{"reserve", {{"data", {{"reservation", "r"}, {"sku", "apple"}, {"qty", 2}}}}},
             {"charge", {{"data", {{"charge", "c"}, {"amount", 250}}}}}};
  Event e = d.run(d.step("create_order", "create", {{"sku", "apple"}, {"qty", 2}, {"card", "x"}}, steps));
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "order_created");
  CHECK(e.resource == "/orders/" + d.order);
  CHECK(e.version == 1);
  CHECK(e.data["id"] == d.order);
  CHECK(e.data["sku"] == "apple");
  CHECK(e.data["qty"] == 2);
  CHECK(e.data["amount"] == 250);
  CHECK(e.data["status"] == "created");
  CHECK(d.effects() == std::vector<json>{{d.op + ".create", "order", "apple", 2, 250}});
}

TEST_CASE("create_order without a charge prices the order at qty times the unit price", "[demo_services]") {
  Demo d(orders_service());
  Event e = d.run(d.step("create_order", "create", {{"sku", "apple"}, {"qty", 4}}));
  CHECK(e.data["amount"] == 4 * demo::k_unit_price_cents);
}

TEST_CASE("create_order rejects out_of_stock for the gone SKU and order_exists for a used id, with no effect",
          "[demo_services]") {
  Demo d(orders_service());
  Event gone = d.run(d.step("create_order", "create", {{"sku", k_demo_gone_sku}, {"qty", 1}}));
  CHECK(gone.state == OpState::rejected);
  CHECK(gone.code == "out_of_stock");
  CHECK(d.effects().empty());
  d.op = new_uuid_v7();
  REQUIRE(d.run(d.step("create_order", "create", {{"sku", "apple"}, {"qty", 1}})).state == OpState::completed);
  d.op = new_uuid_v7();  // another operation naming the same order id
  CHECK(d.run(d.step("create_order", "create", {{"sku", "apple"}, {"qty", 1}})).code == "order_exists");
  Command no_id = d.step("create_order", "create", {{"sku", "apple"}, {"qty", 1}});
  no_id.id = new_uuid_v7();
  no_id.params = json::object();
  CHECK(d.run(no_id).code == "invalid_request");
  CHECK(d.effects().size() == 1);
}

TEST_CASE("a canceled step that was not handled records canceled and has no effect", "[demo_services]") {
  Demo d(payments_service());
  Command c = d.step("charge_card", "charge", {{"qty", 1}, {"card", "4000000000000001"}});
  c.cancel = true;  // a settle, or a cancel-requested saga's step
  Event e = d.run(c);
  CHECK(e.state == OpState::canceled);
  CHECK(d.effects().empty());
  c.cancel = false;  // a later delivery finds canceled: the step can never run now
  CHECK(d.run(c).state == OpState::canceled);
  CHECK(d.effects().empty());
}
