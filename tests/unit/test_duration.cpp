// shared/duration.h: the durations of flags and config (--retention 7d).
#include <catch2/catch.hpp>

#include "shared/duration.h"

using namespace asyncops;
using std::chrono::milliseconds;

namespace {
milliseconds parsed(const std::string& text) {
  milliseconds d{-1};
  REQUIRE(parse_duration(text, &d));
  return d;
}
}  // namespace

TEST_CASE("durations parse in every unit, a bare number being seconds", "[duration]") {
  CHECK(parsed("250ms") == milliseconds(250));
  CHECK(parsed("30s") == milliseconds(30000));
  CHECK(parsed("30") == milliseconds(30000));
  CHECK(parsed("10m") == milliseconds(600000));
  CHECK(parsed("24h") == milliseconds(86400000));
  CHECK(parsed("7d") == milliseconds(7LL * 86400000));
  CHECK(parsed("0") == milliseconds(0));
  CHECK(parsed("007s") == milliseconds(7000));
}

TEST_CASE("malformed durations are refused and leave the output alone", "[duration]") {
  for (const char* bad : {"", "s", "ms", "-5s", "+5s", " 5s", "5 s", "5s ", "1.5h", "5S", "5sec", "5w", "1h30m", "0x10"}) {
    milliseconds d{-1};
    INFO(bad);
    CHECK_FALSE(parse_duration(bad, &d));
    CHECK(d == milliseconds(-1));
  }
}

TEST_CASE("durations too long for 64-bit milliseconds are refused rather than overflowing", "[duration]") {
  milliseconds d{-1};
  CHECK(parse_duration("999999999999ms", &d));  // 12 digits: the most accepted
  CHECK(d == milliseconds(999999999999LL));
  CHECK(parse_duration("999999999999s", &d));
  CHECK(d == milliseconds(999999999999000LL));
  CHECK_FALSE(parse_duration("999999999999d", &d));  // 8.6e19 ms: more than int64 holds
  CHECK(parse_duration("999999999999h", &d));  // 3.6e18 ms: still fits
  CHECK(d == milliseconds(999999999999LL * 3600000));
  CHECK_FALSE(parse_duration("1000000000000", &d));
  CHECK_FALSE(parse_duration("99999999999999999999999s", &d));  // would throw out of stoll
}

TEST_CASE("a duration is formatted in its largest exact unit", "[duration]") {
  CHECK(format_duration(milliseconds(7LL * 86400000)) == "7d");
  CHECK(format_duration(milliseconds(3600000)) == "1h");
  CHECK(format_duration(milliseconds(90000)) == "90s");
  CHECK(format_duration(milliseconds(120000)) == "2m");
  CHECK(format_duration(milliseconds(1500)) == "1500ms");
  CHECK(format_duration(milliseconds(0)) == "0s");
}

TEST_CASE("formatting then parsing a duration gives it back", "[duration]") {
  for (long long ms : {0LL, 1LL, 999LL, 1000LL, 61000LL, 3600000LL, 86400000LL * 30, 86400000LL + 1}) {
    CHECK(parsed(format_duration(milliseconds(ms))) == milliseconds(ms));
  }
}
