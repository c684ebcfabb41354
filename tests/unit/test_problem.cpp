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
