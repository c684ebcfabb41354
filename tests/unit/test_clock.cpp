#include <catch2/catch.hpp>

#include <cstdio>
#include <ctime>
#include <random>
#include <string>

#include "shared/clock.h"
#include "value_of.h"

using namespace asyncops;
using asyncops::test::value_of;

TEST_CASE("RFC 3339 times are UTC with milliseconds", "[clock]") {
  CHECK(format_rfc3339_ms(0) == "1970-01-01T00:00:00.000Z");
  CHECK(format_rfc3339_ms(1795000000123) == "2026-11-18T11:06:40.123Z");
}

TEST_CASE("RFC 3339 times are formatted as gmtime_r would, over the whole four-digit range", "[clock]") {
  // The formatter computes the date itself; gmtime_r is the reference.
  auto reference = [](int64_t ms) {
    time_t secs = static_cast<time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char buf[64];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    return std::string(buf);
  };
  // Day and year boundaries, leap days (2000 is a leap year, 1900 and 2100
  // are not), before 1970 and the ends of the range.
  for (int64_t t : {int64_t{0}, int64_t{-1}, int64_t{999}, int64_t{-1000}, int64_t{951782399999},
                    int64_t{951782400000}, int64_t{951868800000}, int64_t{-2203977600000}, int64_t{4107456000000},
                    int64_t{1709164800000}, int64_t{-62167219200000}, int64_t{253402300799999}}) {
    INFO(t);
    CHECK(format_rfc3339_ms(t) == reference(t));
  }
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> any_time(-62167219200000, 253402300799999);
  int differ = 0;
  for (int i = 0; i < 200000; ++i) {
    int64_t t = any_time(rng);
    if (format_rfc3339_ms(t) != reference(t) && ++differ <= 3) FAIL_CHECK(t << ": " << format_rfc3339_ms(t));
  }
  CHECK(differ == 0);
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
