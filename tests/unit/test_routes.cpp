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
