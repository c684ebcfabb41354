#include <catch2/catch.hpp>

#include "shared/clock.h"

using namespace asyncops;

TEST_CASE("RFC 3339 times are UTC with milliseconds", "[clock]") {
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1795000000123) == "2026-11-18T11:06:40.123Z");
}

TEST_CASE("RFC 3339 parsing round-trips and honours offsets", "[clock]") {
  int64_t ms = 0;
  REQUIRE(parse_rfc3339("2026-11-18T11:06:40.123Z", &ms));
  CHECK(ms == 1795000000123);
  REQUIRE(parse_rfc3339("2026-11-18T12:06:40+01:00", &ms));
  CHECK(ms == 1795000000000);
  REQUIRE(parse_rfc3339("2026-11-18T11:06:40.5Z", &ms));
  CHECK(ms == 1795000000500);
}

TEST_CASE("RFC 3339 parsing rejects malformed times", "[clock]") {
  int64_t ms = 0;
  CHECK_FALSE(parse_rfc3339("", &ms));
  CHECK_FALSE(parse_rfc3339("2026-11-18", &ms));
  CHECK_FALSE(parse_rfc3339("2026-11-18T10:26:40", &ms));
  CHECK_FALSE(parse_rfc3339("2026-13-18T10:26:40Z", &ms));
  CHECK_FALSE(parse_rfc3339("2026-11-18T10:26:40.Z", &ms));
  CHECK_FALSE(parse_rfc3339("2026-11-18T10:26:40Zjunk", &ms));
}
