#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "shared/problem.h"

using namespace asyncops;

TEST_CASE("a problem has the RFC 9457 members", "[problem]") {
  auto j = nlohmann::json::parse(to_json({422, "", "bad", "validation_failed", "", {{"/email", "is required"}}}));
  CHECK(j["type"] == "about:blank");
  CHECK(j["title"] == "Unprocessable Content");
  CHECK(j["status"] == 422);
  CHECK(j["detail"] == "bad");
  CHECK(j["code"] == "validation_failed");
  CHECK(j["errors"][0]["pointer"] == "/email");
  CHECK(j["errors"][0]["detail"] == "is required");
}

TEST_CASE("a problem with invalid UTF-8 in its detail still serialises", "[problem]") {
  std::string s = to_json({400, "", std::string("bad \xff byte"), "", "", {}});
  CHECK_NOTHROW(nlohmann::json::parse(s));
}

TEST_CASE("make_problem is status, detail and code, titled by the status phrase", "[problem]") {
  Problem p = make_problem(404, "no operation x", "operation_not_found");
  CHECK(p.status == 404);
  CHECK(p.detail == "no operation x");
  CHECK(p.code == "operation_not_found");
  CHECK(p.instance.empty());
  CHECK(p.errors.empty());
  auto j = nlohmann::json::parse(to_json(p));
  CHECK(j["title"] == "Not Found");
  CHECK(j["status"] == 404);
  CHECK(j["code"] == "operation_not_found");
}
