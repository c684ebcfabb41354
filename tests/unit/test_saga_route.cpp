#include <catch2/catch.hpp>

#include "daemon/saga_route.h"

using namespace asyncops;
using nlohmann::json;

namespace {

const std::string k_route = "routes[2] (POST /orders)";

json order_steps() {
  return json::parse(R"([
    {"name": "reserve", "service": "inventory", "command": "reserve_stock", "compensate": "release_stock"},
    {"name": "charge",  "service": "payments",  "command": "charge_card",  "compensate": "refund_card",
     "timeout": "10s", "max_attempts": 3},
    {"name": "create",  "service": "orders",    "command": "create_order"}
  ])");
}

// The error for steps, which must be refused.
std::string refusal(const json& steps, const std::vector<std::string>& known = {}) {
  auto r = parse_saga_steps(steps, k_route, "place_order", known);
  REQUIRE_FALSE(r.ok());
  // Every error names the route first.
  CHECK(r.error().rfind(k_route + ": ", 0) == 0);
  return r.error();
}

}  // namespace

TEST_CASE("the issue's orders saga parses into its plan", "[saga_route]") {
  auto r = parse_saga_steps(order_steps(), k_route, "place_order", {"inventory", "payments", "orders"});
  REQUIRE(r.ok());
  const auto& plan = r.value();
  REQUIRE(plan.size() == 3);
  CHECK(plan[0].name == "reserve");
  CHECK(plan[0].service == "inventory");
  CHECK(plan[0].command == "reserve_stock");
  CHECK(plan[0].compensate == "release_stock");
  CHECK(plan[0].timeout_ms == 0);
  CHECK(plan[0].max_attempts == 0);
  CHECK(plan[1].timeout_ms == 10000);
  CHECK(plan[1].max_attempts == 3);
  CHECK(plan[2].compensate.empty());
  CHECK(saga_services(plan) == std::vector<std::string>{"inventory", "payments", "orders"});
}

TEST_CASE("step names must be unique", "[saga_route]") {
  json steps = order_steps();
  steps[1]["name"] = "reserve";
  CHECK(refusal(steps) == k_route + ": steps[1] (reserve): the step name reserve is used twice");
}

TEST_CASE("a step name must fit a request id and have no separator", "[saga_route]") {
  json steps = order_steps();
  for (const char* bad : {"", "has.dot", "has space", "twenty-three-characters"}) {
    steps[0]["name"] = bad;
    CHECK_THAT(refusal(steps), Catch::Contains("steps[0]"));
  }
  steps[0]["name"] = std::string(saga::k_max_step_name, 'a');
  CHECK(parse_saga_steps(steps, k_route, "place_order").ok());
  steps[0].erase("name");
  CHECK(refusal(steps) == k_route + ": steps[0]: name is required");
}

TEST_CASE("a compensation must be a non-empty command name", "[saga_route]") {
  json steps = order_steps();
  steps[0]["compensate"] = "";
  CHECK(refusal(steps) == k_route + ": steps[0] (reserve): compensate must be a non-empty command name");
  steps[0]["compensate"] = 7;
  CHECK_THAT(refusal(steps), Catch::Contains("compensate must be a non-empty command name"));
  steps[0]["compensate"] = nullptr;
  CHECK_THAT(refusal(steps), Catch::Contains("compensate must be a non-empty command name"));
}

TEST_CASE("the last step cannot have a compensation", "[saga_route]") {
  json steps = order_steps();
  steps[2]["compensate"] = "cancel_order";
  CHECK(refusal(steps) ==
        k_route + ": steps[2] (create): the last step cannot have compensate: its completion completes the saga");
}

TEST_CASE("a step calling the saga's own command is a cycle", "[saga_route]") {
  json steps = order_steps();
  steps[1]["command"] = "place_order";
  CHECK(refusal(steps) == k_route + ": steps[1] (charge): calls the saga's own command place_order (a cycle)");
  steps = order_steps();
  steps[0]["compensate"] = "place_order";
  CHECK_THAT(refusal(steps), Catch::Contains("(a cycle)"));
}

TEST_CASE("services must be named and known", "[saga_route]") {
  json steps = order_steps();
  CHECK(refusal(steps, {"inventory", "orders"}) == k_route + ": steps[1] (charge): unknown service payments");
  steps[1].erase("service");
  CHECK(refusal(steps) == k_route + ": steps[1] (charge): service is required");
  steps[1]["service"] = "pay/ments";
  CHECK_THAT(refusal(steps), Catch::Contains("service must be letters"));
}

TEST_CASE("steps must be an array of 1 to 16 objects with known keys", "[saga_route]") {
  CHECK_THAT(refusal(json::object()), Catch::Contains("steps must be an array of 1 to 16 steps"));
  CHECK_THAT(refusal(json::array()), Catch::Contains("steps must be an array of 1 to 16 steps"));
  json many = json::array();
  for (int i = 0; i < 17; ++i) many.push_back({{"name", "s" + std::to_string(i)}, {"service", "x"}, {"command", "c"}});
  CHECK_THAT(refusal(many), Catch::Contains("1 to 16"));
  json steps = order_steps();
  steps[1] = "charge";
  CHECK(refusal(steps) == k_route + ": steps[1]: expected an object");
  steps = order_steps();
  steps[0]["next"] = "charge";  // no jumps: a saga is a list, so it has no other cycles
  CHECK(refusal(steps) == k_route + ": steps[0]: unknown key 'next'");
  steps = order_steps();
  steps[2].erase("command");
  CHECK(refusal(steps) == k_route + ": steps[2] (create): command must be a non-empty command name");
}

TEST_CASE("timeout and max_attempts are checked", "[saga_route]") {
  json steps = order_steps();
  for (json bad : {json("soon"), json("0s"), json(30), json("-1s")}) {
    steps[0]["timeout"] = bad;
    CHECK_THAT(refusal(steps), Catch::Contains("timeout must be a duration"));
  }
  steps = order_steps();
  for (json bad : {json(0), json(101), json(2.5), json("3")}) {
    steps[0]["max_attempts"] = bad;
    CHECK_THAT(refusal(steps), Catch::Contains("max_attempts must be a whole number from 1 to 100"));
  }
  steps[0]["max_attempts"] = 100;
  CHECK(parse_saga_steps(steps, k_route, "place_order").ok());
}
