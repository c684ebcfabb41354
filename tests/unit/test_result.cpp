#include <catch2/catch.hpp>

#include "shared/result.h"

using namespace asyncops;

namespace {
Status check_positive(int n) {
  if (n <= 0) return Error{"not positive: " + std::to_string(n)};
  return Status::success();
}
}  // namespace

TEST_CASE("Status: ok, or an error message", "[result]") {
  CHECK(Status().ok());
  CHECK(Status::success().ok());
  CHECK(static_cast<bool>(check_positive(1)));
  Status bad = check_positive(0);
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(static_cast<bool>(bad));
  CHECK(bad.error() == "not positive: 0");
}

TEST_CASE("Result: a value, or an error message", "[result]") {
  Result<int> good = 3;
  REQUIRE(good.ok());
  CHECK(good.value() == 3);
  Result<int> bad = Error{"no"};
  CHECK_FALSE(bad);
  CHECK(bad.error() == "no");
}
