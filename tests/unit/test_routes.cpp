#include <catch2/catch.hpp>

#include "daemon/router.h"
#include "daemon/routes.h"

using namespace asyncops;
using nlohmann::json;

TEST_CASE("a path template matches segments and binds placeholders", "[routes]") {
  auto t = PathTemplate::parse("/users/{id}");
  REQUIRE(t.ok());
  std::map<std::string, std::string> p;
  CHECK(t->match("/users/abc-1", &p));
  CHECK(p["id"] == "abc-1");
  CHECK_FALSE(t->match("/users", &p));
  CHECK_FALSE(t->match("/users/", &p));
  CHECK_FALSE(t->match("/users/a/b", &p));
  CHECK_FALSE(t->match("/users/a%20b", &p));
  CHECK_FALSE(t->match("/users/" + std::string(129, 'a'), &p));
  CHECK(t->expand({{"id", "x"}}) == "/users/x");
}

TEST_CASE("bad path templates are refused", "[routes]") {
  CHECK_FALSE(PathTemplate::parse("users").ok());
  CHECK_FALSE(PathTemplate::parse("/users//x").ok());
  CHECK_FALSE(PathTemplate::parse("/users/{id").ok());
  CHECK_FALSE(PathTemplate::parse("/a/{id}/{id}").ok());
  CHECK_FALSE(PathTemplate::parse("/a b").ok());
}

TEST_CASE("the default route table maps the users commands", "[routes]") {
  auto t = RouteTable::load_json(RouteTable::default_json());
  REQUIRE(t.ok());
  REQUIRE(t->routes().size() == 3);
  CHECK(t->routes()[0].command == "create_user");
  CHECK(t->routes()[0].resource->text() == "/users/{id}");
  CHECK_FALSE(t->routes()[2].resource.has_value());  // deletes name no resource
  CHECK(t->services() == std::vector<std::string>{"users"});
  CHECK(t->collections() == std::vector<std::string>{"/users"});
}

TEST_CASE("route table errors name the place", "[routes]") {
  CHECK(RouteTable::load_json("nope").error() == "routes: not valid JSON");
  CHECK(RouteTable::load_json(R"({"routes":[{"method":"GET","path":"/a","command":"c","service":"s"}]})")
            .error() == "routes[0].method: must be one of POST, PUT, PATCH, DELETE");
  CHECK(RouteTable::load_json(R"({"routes":[{"method":"POST","path":"/a","command":"c","service":"s","colour":1}]})")
            .error() == "routes[0]: unknown key 'colour'");
  CHECK(RouteTable::load_json(R"({"routes":[{"method":"POST","path":"/a","command":"c","service":"s","body":{"x":{"type":"str"}}}]})")
            .error()
            .find("routes[0].body.x.type") == 0);
  CHECK_FALSE(RouteTable::load_json(R"({"routes":[]})").ok());
}

TEST_CASE("body validation lists every field error", "[routes]") {
  auto t = RouteTable::load_json(RouteTable::default_json());
  const Route& create = t->routes()[0];
  CHECK(validate_body(create, {{"email", "a@b.c"}, {"name", "A"}}).empty());
  auto errs = validate_body(create, {{"email", 5}, {"extra", true}});
  REQUIRE(errs.size() == 3);
  CHECK(errs[0].pointer == "/email");
  CHECK(errs[0].detail == "must be of type string, not integer");
  CHECK(errs[1].pointer == "/name");
  CHECK(errs[1].detail == "is required");
  CHECK(errs[2].pointer == "/extra");
  auto long_name = validate_body(create, {{"email", "a@b.c"}, {"name", std::string(201, 'x')}});
  REQUIRE(long_name.size() == 1);
  CHECK(long_name[0].detail == "must have at most 200 characters");
  CHECK(validate_body(create, json::array()).size() == 1);
}

TEST_CASE("the router tells 404 from 405 and lists the allowed methods", "[routes]") {
  Router<int> r;
  r.add("GET", PathTemplate::parse("/users").value(), 1);
  r.add("POST", PathTemplate::parse("/users").value(), 2);
  r.add("GET", PathTemplate::parse("/users/{id}").value(), 3);
  auto m = r.match("POST", "/users");
  REQUIRE(m.kind == decltype(m)::found);
  CHECK(*m.handler == 2);
  m = r.match("HEAD", "/users/x");
  REQUIRE(m.kind == decltype(m)::found);
  CHECK(m.params["id"] == "x");
  m = r.match("DELETE", "/users");
  CHECK(m.kind == decltype(m)::method_not_allowed);
  CHECK(m.allow == std::vector<std::string>{"GET", "HEAD", "POST"});
  CHECK(r.match("GET", "/nope").kind == decltype(m)::not_found);
}

namespace {
// The orders route of docs/design/sagas.md §1, as routes[index] of a table
// that also has the users routes before it.
std::string orders_table(const std::string& steps_json, const std::string& extra = "") {
  return R"({"routes":[
    {"method":"POST","path":"/users","command":"create_user","service":"users","resource":"/users/{id}"},
    {"method":"DELETE","path":"/users/{id}","command":"delete_user","service":"users","resource":""},
    {"method": "POST", "path": "/orders", "command": "place_order", "resource": "/orders/{id}",
     "body": {"sku": {"type": "string", "required": true}, "qty": {"type": "integer", "required": true},
              "card": {"type": "string", "required": true}},)" +
         extra + R"(
     "steps": )" + steps_json + "}]}";
}

const char* k_order_steps = R"([
   {"name": "reserve", "service": "inventory", "command": "reserve_stock", "compensate": "release_stock"},
   {"name": "charge",  "service": "payments",  "command": "charge_card",  "compensate": "refund_card",
    "timeout": "10s", "max_attempts": 3},
   {"name": "create",  "service": "orders",    "command": "create_order"}
 ])";

const std::string k_orders_route = "routes[2] (POST /orders): ";

std::string load_error(const std::string& text, const std::vector<std::string>& known = {}) {
  auto t = RouteTable::load_json(text, known);
  REQUIRE_FALSE(t.ok());
  return t.error();
}
}  // namespace

TEST_CASE("the orders saga route of the design loads with its steps", "[routes][saga]") {
  auto t = RouteTable::load_json(orders_table(k_order_steps));
  REQUIRE(t.ok());
  REQUIRE(t->routes().size() == 3);
  const Route& orders = t->routes()[2];
  CHECK(orders.command == "place_order");
  CHECK(orders.resource->text() == "/orders/{id}");
  REQUIRE(orders.steps.size() == 3);
  CHECK(orders.steps[0].name == "reserve");
  CHECK(orders.steps[0].compensate == "release_stock");
  CHECK(orders.steps[1].timeout_ms == 10000);
  CHECK(orders.steps[1].max_attempts == 3);
  CHECK(orders.steps[2].compensate.empty());
  CHECK(orders.service == "orders");  // the last step's: the one that makes the resource
  CHECK(route_name(orders) == "POST /orders");
  CHECK(creates_resource(orders));
  // Every step's service gets a commands endpoint, after the routes before it.
  CHECK(t->services() == std::vector<std::string>{"users", "inventory", "payments", "orders"});
  CHECK(t->routes()[0].steps.empty());
  // With a list of known services, one that has them all.
  CHECK(RouteTable::load_json(orders_table(k_order_steps), {"users", "inventory", "payments", "orders"}).ok());
}

TEST_CASE("a saga route may not name a service of its own", "[routes][saga]") {
  CHECK(load_error(orders_table(k_order_steps, R"("service": "orders",)")) ==
        k_orders_route + "a route with steps has no service: each step names its own");
}

TEST_CASE("each saga validation error names the route and the step", "[routes][saga]") {
  // Step names must be unique.
  CHECK(load_error(orders_table(R"([
      {"name": "reserve", "service": "inventory", "command": "reserve_stock"},
      {"name": "reserve", "service": "orders", "command": "create_order"}])")) ==
        k_orders_route + "steps[1] (reserve): the step name reserve is used twice");
  // Services must be known (when the daemon has a list).
  CHECK(load_error(orders_table(k_order_steps), {"users", "inventory", "orders"}) ==
        k_orders_route + "steps[1] (charge): unknown service payments");
  // And well formed, and present.
  CHECK(load_error(orders_table(R"([{"name": "a", "command": "x"}])")) ==
        k_orders_route + "steps[0] (a): service is required");
  // A compensation must be a non-empty command name.
  CHECK(load_error(orders_table(R"([
      {"name": "reserve", "service": "inventory", "command": "reserve_stock", "compensate": ""},
      {"name": "create", "service": "orders", "command": "create_order"}])")) ==
        k_orders_route + "steps[0] (reserve): compensate must be a non-empty command name");
  CHECK(load_error(orders_table(R"([
      {"name": "reserve", "service": "inventory", "command": "reserve_stock", "compensate": null},
      {"name": "create", "service": "orders", "command": "create_order"}])")) ==
        k_orders_route + "steps[0] (reserve): compensate must be a non-empty command name");
  // compensate on the last step.
  CHECK(load_error(orders_table(R"([
      {"name": "reserve", "service": "inventory", "command": "reserve_stock"},
      {"name": "create", "service": "orders", "command": "create_order", "compensate": "cancel_order"}])")) ==
        k_orders_route + "steps[1] (create): the last step cannot have compensate: its completion completes the saga");
  // A cycle: a step that calls the saga's own command.
  CHECK(load_error(orders_table(R"([
      {"name": "again", "service": "orders", "command": "place_order"}])")) ==
        k_orders_route + "steps[0] (again): calls the saga's own command place_order (a cycle)");
  // No steps, or not an array.
  CHECK(load_error(orders_table("[]")) == k_orders_route + "steps must be an array of 1 to 16 steps");
  CHECK(load_error(orders_table("{}")) == k_orders_route + "steps must be an array of 1 to 16 steps");
  // There are no jumps.
  CHECK(load_error(orders_table(R"([
      {"name": "a", "service": "orders", "command": "x", "next": "a"}])")) ==
        k_orders_route + "steps[0]: unknown key 'next'");
}
