#include <catch2/catch.hpp>

#include "shared/clock.h"
#include "value_of.h"

using namespace asyncops;
using asyncops::test::value_of;

TEST_CASE("RFC 3339 times are UTC with milliseconds", "[clock]") {
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1795000000123) == "2026-11-18T11:06:40.123Z");
}

TEST_CASE("RFC 3339 parsing round-trips and honours offsets", "[clock]") {
  CHECK(value_of(parse_rfc3339("2026-11-18T11:06:40.123Z")) == 1795000000123);
  CHECK(value_of(parse_rfc3339("2026-11-18T12:06:40+01:00")) == 1795000000000);
  CHECK(value_of(parse_rfc3339("2026-11-18T11:06:40.5Z")) == 1795000000500);
}

TEST_CASE("RFC 3339 parsing rejects malformed times", "[clock]") {
  for (const char* bad : {"", "2026-11-18", "2026-11-18T10:26:40", "2026-13-18T10:26:40Z", "2026-11-18T10:26:40.Z",
                          "2026-11-18T10:26:40Zjunk"}) {
    INFO(bad);
    CHECK_FALSE(parse_rfc3339(bad));
  }
  auto bad = parse_rfc3339("2026-11-18T10:26:40Zjunk");
  CHECK(bad.error() == "'2026-11-18T10:26:40Zjunk' is not an RFC 3339 time like 2026-11-27T06:55:00.123Z");
}
