// The orders saga (examples/orders-saga, docs/design/sagas.md §9
// "Integration") on the real daemon and one worker of each built-in demo
// service: each outcome, checked in the operation's steps, its history and
// the services' effects tables.
#include <signal.h>

#include <fstream>
#include <memory>

#include <catch2/catch.hpp>

#include "harness.h"
#include "saga_fixture.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

struct OrdersSaga {
  TempDir files;
  std::unique_ptr<System> sys;

  // The example's routes, with hold_ms allowed in the body (the demo
  // payments' hold for a card ending 0009) and `edit` applied.
  explicit OrdersSaga(const std::function<void(json&)>& edit = nullptr) {
    json routes = orders_saga_routes();
    orders_route(routes)["body"]["hold_ms"] = {{"type", "integer"}};
    if (edit) edit(routes);
    std::ofstream(files.path + "/routes.json") << routes.dump();
    sys = std::make_unique<System>(0, std::vector<std::string>{"--routes", files.path + "/routes.json"});
    for (const char* service : {"inventory", "payments", "orders"}) sys->start_worker({"--service", service});
  }

  // POST /orders; the accepted operation's id.
  std::string place(const json& body) {
    auto r = sys->send("POST", "/orders", body.dump());
    INFO(r.body);
    REQUIRE(r.status == 202);
    return r.json.value("id", "");
  }
  json finished(const std::string& id) {
    json op = sys->wait_terminal(id, 60);
    INFO(sys->logs());
    REQUIRE(op.value("done", false));
    return op;
  }
  SagaEffects effects() { return read_saga_effects(sys->data_dir()); }
  // The history kinds of the operation, each with its step: "kind step".
  std::vector<std::string> history(const std::string& id) {
    auto r = sys->get("/operations/" + id + "/history");
    REQUIRE(r.status == 200);
    std::vector<std::string> out;
    for (const json& h : r.json["items"]) {
      std::string step = h["step"].is_string() ? h["step"].get<std::string>() : "";
      out.push_back(h["kind"].get<std::string>() + (step.empty() ? "" : " " + step));
    }
    return out;
  }
  void check_invariants(const std::vector<json>& ops) {
    auto problems = check_saga_invariants(effects(), ops);
    INFO(json(problems).dump(1));
    CHECK(problems.empty());
  }
};

size_t position(const std::vector<std::string>& v, const std::string& item) {
  return std::find(v.begin(), v.end(), item) - v.begin();
}

}  // namespace

TEST_CASE("saga: an order that every step accepts completes and its order can be read", "[saga]") {
  OrdersSaga s;
  std::string id = s.place({{"sku", "apple"}, {"qty", 2}, {"card", "4000000000000001"}});
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "completed");
  CHECK(op["name"] == "place_order");
  CHECK(op["service"] == "orders");  // the last step's
  REQUIRE(op["steps"].size() == 3);
  for (const json& step : op["steps"]) CHECK(step["state"] == "completed");
  CHECK(op["steps"][0]["compensation"]["state"] == "none");
  CHECK(op["steps"][1]["compensation"]["state"] == "none");
  CHECK(op["steps"][2]["compensation"].is_null());
  std::string resource = op.value("resource", "");
  REQUIRE(resource.rfind("/orders/", 0) == 0);
  auto order = s.sys->get(resource);
  CHECK(order.status == 200);
  CHECK(order.json["sku"] == "apple");
  CHECK(order.json["qty"] == 2);
  CHECK(order.json["amount"] == 200);
  CHECK(order.json["status"] == "created");
  CHECK(order.json["id"] == resource.substr(8));
  auto fx = s.effects();
  CHECK(kinds_of(fx.inventory, id + ".reserve") == std::vector<std::string>{"reserve"});
  CHECK(kinds_of(fx.payments, id + ".charge") == std::vector<std::string>{"charge"});
  CHECK(kinds_of(fx.orders, id + ".create") == std::vector<std::string>{"order"});
  s.check_invariants({op});
}

TEST_CASE("saga: a declined card rejects the order card_declined and releases the stock", "[saga]") {
  OrdersSaga s;
  std::string id = s.place({{"sku", "apple"}, {"qty", 3}, {"card", "4000000000000002"}});
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "rejected");
  CHECK(op["code"] == "card_declined");
  CHECK(op.value("message", "").rfind("step charge: ", 0) == 0);
  REQUIRE(op["steps"].size() == 3);
  CHECK(op["steps"][0]["state"] == "completed");
  CHECK(op["steps"][0]["compensation"]["state"] == "completed");
  CHECK(op["steps"][1]["state"] == "rejected");
  CHECK(op["steps"][1]["code"] == "card_declined");
  CHECK(op["steps"][1]["compensation"]["state"] == "none");
  CHECK(op["steps"][2]["state"] == "skipped");
  CHECK(s.sys->get(op.value("resource", "/orders/none")).status == 404);
  auto fx = s.effects();
  CHECK(kinds_of(fx.inventory, id + ".reserve") == std::vector<std::string>{"reserve"});
  CHECK(kinds_of(fx.inventory, id + ".reserve.undo") == std::vector<std::string>{"release"});
  CHECK(fx.payments.empty());
  CHECK(fx.orders.empty());
  s.check_invariants({op});
}

TEST_CASE("saga: out of stock at create refunds the charge, then releases the stock", "[saga]") {
  OrdersSaga s;
  std::string id = s.place({{"sku", "gone"}, {"qty", 1}, {"card", "4000000000000001"}});
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "rejected");
  CHECK(op["code"] == "out_of_stock");
  CHECK(op.value("message", "").rfind("step create: ", 0) == 0);
  REQUIRE(op["steps"].size() == 3);
  CHECK(op["steps"][0]["compensation"]["state"] == "completed");
  CHECK(op["steps"][1]["compensation"]["state"] == "completed");
  CHECK(op["steps"][2]["state"] == "rejected");
  auto fx = s.effects();
  CHECK(kinds_of(fx.payments, id + ".charge.undo") == std::vector<std::string>{"refund"});
  CHECK(kinds_of(fx.inventory, id + ".reserve.undo") == std::vector<std::string>{"release"});
  CHECK(fx.orders.empty());
  // In reverse order, one at a time: the release is sent only after the
  // refund's effect was recorded (its completed event).
  auto h = s.history(id);
  INFO(json(h).dump());
  size_t refunded = position(h, "compensation_completed charge");
  size_t release_sent = position(h, "compensation_dispatched reserve");
  REQUIRE(refunded < h.size());
  REQUIRE(release_sent < h.size());
  CHECK(refunded < release_sent);
  CHECK(position(h, "compensation_dispatched charge") < refunded);
  s.check_invariants({op});
}

TEST_CASE("saga: a cancel while the charge is held ends canceled, with the charge and the reservation undone",
          "[saga]") {
  OrdersSaga s;
  std::string id = s.place({{"sku", "apple"}, {"qty", 1}, {"card", "4000000000000009"}, {"hold_ms", 4000}});
  // The charge is in the handler: the worker said processing.
  bool held = eventually(
      [&] {
        auto r = s.sys->get("/operations/" + id);
        return r.status == 200 && r.json["steps"].size() == 3 && r.json["steps"][1]["state"] == "processing";
      },
      std::chrono::seconds(30));
  INFO(s.sys->logs());
  REQUIRE(held);
  auto cancel = s.sys->send("POST", "/operations/" + id + "/cancel", "");
  INFO(cancel.body);
  CHECK(cancel.status == 202);
  CHECK(cancel.json["cancel_requested"] == true);
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "canceled");
  CHECK(op["code"] == "canceled");
  REQUIRE(op["steps"].size() == 3);
  // The worker did the charge before it could hear the cancel: it is
  // compensated like the reservation.
  CHECK(op["steps"][1]["state"] == "completed");
  CHECK(op["steps"][1]["compensation"]["state"] == "completed");
  CHECK(op["steps"][0]["compensation"]["state"] == "completed");
  CHECK(op["steps"][2]["state"] == "skipped");
  auto fx = s.effects();
  CHECK(kinds_of(fx.payments, id + ".charge") == std::vector<std::string>{"charge"});
  CHECK(kinds_of(fx.payments, id + ".charge.undo") == std::vector<std::string>{"refund"});
  CHECK(kinds_of(fx.inventory, id + ".reserve.undo") == std::vector<std::string>{"release"});
  CHECK(fx.orders.empty());
  s.check_invariants({op});
}

TEST_CASE("saga: a refund that always fails ends the order failed compensation_failed naming charge", "[saga]") {
  OrdersSaga s([](json& routes) { saga_step(routes, "charge")["max_attempts"] = 2; });
  std::string id = s.place({{"sku", "gone"}, {"qty", 1}, {"card", "4000000000000013"}});
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "failed");
  CHECK(op["code"] == "compensation_failed");
  CHECK(op.value("message", "").find("the compensation of step charge: refund_unavailable") != std::string::npos);
  REQUIRE(op["steps"].size() == 3);
  CHECK(op["steps"][2]["state"] == "rejected");
  CHECK(op["steps"][1]["compensation"]["state"] == "failed");
  CHECK(op["steps"][1]["compensation"]["code"] == "refund_unavailable");
  CHECK(op["steps"][0]["compensation"]["state"] == "abandoned");
  auto fx = s.effects();
  CHECK(kinds_of(fx.payments, id + ".charge") == std::vector<std::string>{"charge"});
  CHECK(kinds_of(fx.payments, id + ".charge.undo").empty());
  CHECK(kinds_of(fx.inventory, id + ".reserve.undo").empty());
  // What was not undone stays: the charge and the reservation.
  CHECK(kinds_of(fx.inventory, id + ".reserve") == std::vector<std::string>{"reserve"});
}

TEST_CASE("saga: examples/orders-saga/run.sh starts the daemon and the three demo services", "[saga][examples]") {
  TempDir dir;
  std::string log = dir.path + "/run.log";
  Process run({"/bin/bash", std::string(ASYNCOPS_SOURCE_DIR) + "/examples/orders-saga/run.sh", dir.path + "/data"},
              log, {{"ASYNCOPSD", ASYNCOPSD_BIN}, {"ASYNCOPS_WORKER", ASYNCOPS_WORKER_BIN}, {"LISTEN", "127.0.0.1:0"}});
  // run.sh stops its children on SIGTERM; never leave them behind.
  struct StopOnExit {
    Process& p;
    ~StopOnExit() {
      p.signal(SIGTERM);
      p.wait(std::chrono::seconds(30));
    }
  } stop{run};
  std::string url = wait_for_url_line(log, std::chrono::seconds(60));
  INFO(slurp(log) + slurp(dir.path + "/data/asyncopsd.log"));
  REQUIRE(!url.empty());
  httplib::Client c(url);
  c.set_read_timeout(30);
  auto r = c.Post("/orders", {{"Prefer", "wait=20"}}, R"({"sku":"apple","qty":2,"card":"4000000000000001"})",
                  "application/json");
  REQUIRE(r);
  INFO(r->body);
  CHECK(r->status == 200);
  json op = json::parse(r->body, nullptr, false);
  CHECK(op["state"] == "completed");
  // Answered from the saga's last change: its steps are the stored ones.
  auto stored = c.Get("/operations/" + op.value("id", ""));
  REQUIRE(stored);
  CHECK(json::parse(stored->body, nullptr, false)["steps"] == op["steps"]);
  CHECK(op["steps"].size() == 3);
  auto order = c.Get(op.value("resource", "/orders/none"));
  REQUIRE(order);
  CHECK(order->status == 200);
  CHECK(json::parse(order->body, nullptr, false)["amount"] == 200);
  run.signal(SIGTERM);
  int status = run.wait(std::chrono::seconds(30));
  CHECK(status != -1);
}

TEST_CASE("saga: a step whose handler outlasts the step's timeout keeps its lease by heartbeats and runs once",
          "[saga]") {
  OrdersSaga s([](json& routes) {
    saga_step(routes, "charge")["timeout"] = "1s";
    saga_step(routes, "charge")["max_attempts"] = 2;
  });
  std::string id = s.place({{"sku", "apple"}, {"qty", 1}, {"card", "4000000000000009"}, {"hold_ms", 2500}});
  json op = s.finished(id);
  INFO(op.dump());
  CHECK(op["state"] == "completed");
  REQUIRE(op["steps"].size() == 3);
  CHECK(op["steps"][1]["state"] == "completed");
  CHECK(op["steps"][1]["attempt"] == 1);
  auto fx = s.effects();
  CHECK(kinds_of(fx.payments, id + ".charge") == std::vector<std::string>{"charge"});
  s.check_invariants({op});
}

TEST_CASE("saga: a step whose only attempt died with its worker settles as never run, and the saga unwinds",
          "[saga]") {
  OrdersSaga s([](json& routes) {
    saga_step(routes, "charge")["timeout"] = "1s";
    saga_step(routes, "charge")["max_attempts"] = 1;
  });
  std::string id = s.place({{"sku", "apple"}, {"qty", 1}, {"card", "4000000000000009"}, {"hold_ms", 10000}});
  bool held = eventually(
      [&] {
        auto r = s.sys->get("/operations/" + id);
        return r.status == 200 && r.json["steps"].size() == 3 && r.json["steps"][1]["state"] == "processing";
      },
      std::chrono::seconds(30));
  REQUIRE(held);
  // The payments worker (the second started) dies inside the charge: its
  // transaction, and so the charge, never commits. Another takes its place.
  Process& payments = s.sys->workers()[1];
  payments.signal(SIGKILL);
  REQUIRE(payments.wait(std::chrono::seconds(10)) != -1);
  s.sys->start_worker({"--service", "payments"});
  json op = s.finished(id);
  INFO(op.dump());
  auto h = s.history(id);
  INFO(json(h).dump());
  CHECK(position(h, "step_settling charge") < h.size());
  // The give-up is settled (the same id, cancel: true): the new worker
  // finds no outcome and records canceled, or the fence was first.
  CHECK(op["state"] == "failed");
  CHECK(op["code"] == "worker_timeout");
  REQUIRE(op["steps"].size() == 3);
  CHECK(op["steps"][1]["state"] == "failed");
  CHECK(op["steps"][1]["code"] == "worker_timeout");
  CHECK(op["steps"][0]["compensation"]["state"] == "completed");
  CHECK(op["steps"][2]["state"] == "skipped");
  auto fx = s.effects();
  CHECK(fx.payments.empty());
  CHECK(kinds_of(fx.inventory, id + ".reserve.undo") == std::vector<std::string>{"release"});
  s.check_invariants({op});
}
