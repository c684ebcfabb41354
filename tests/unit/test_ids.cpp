#include <catch2/catch.hpp>

#include <set>

#include "shared/ids.h"

using namespace asyncops;

TEST_CASE("uuid v7 has the canonical form, version 7 and the RFC variant", "[ids]") {
  std::string id = new_uuid_v7();
  REQUIRE(id.size() == 36);
  CHECK(is_uuid(id));
  CHECK(id[14] == '7');
  CHECK(std::string("89ab").find(id[19]) != std::string::npos);
}

TEST_CASE("uuid v7 ids made in sequence are unique and sorted", "[ids]") {
  std::vector<std::string> ids;
  for (int i = 0; i < 20000; ++i) ids.push_back(new_uuid_v7());
  CHECK(std::is_sorted(ids.begin(), ids.end()));
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == ids.size());
}

TEST_CASE("is_uuid rejects other shapes", "[ids]") {
  CHECK_FALSE(is_uuid(""));
  CHECK_FALSE(is_uuid("nope"));
  CHECK_FALSE(is_uuid("0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0"));
  CHECK_FALSE(is_uuid("0190c3e2x7a1b-7c3d-8e4f-5a6b7c8d9e0f"));
  CHECK_FALSE(is_uuid("0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0g"));
  CHECK(is_uuid("0190C3E2-7A1B-7C3D-8E4F-5A6B7C8D9E0F"));
}
