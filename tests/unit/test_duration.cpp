// shared/duration.h: the durations of flags and config (--retention 7d).
#include <catch2/catch.hpp>

#include "shared/duration.h"
#include "value_of.h"

using namespace asyncops;
using asyncops::test::value_of;
using std::chrono::milliseconds;

namespace {
milliseconds parsed(const std::string& text) { return value_of(parse_duration(text)); }
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

TEST_CASE("malformed durations are refused with an error naming the text", "[duration]") {
  for (const char* bad : {"", "s", "ms", "-5s", "+5s", " 5s", "5 s", "5s ", "1.5h", "5S", "5sec", "5w", "1h30m", "0x10"}) {
    INFO(bad);
    auto d = parse_duration(bad);
    REQUIRE_FALSE(d);
    CHECK(d.error() == "'" + std::string(bad) + "' is not a duration like 250ms, 30s, 5m, 24h or 7d");
  }
}

TEST_CASE("durations too long for 64-bit milliseconds are refused rather than overflowing", "[duration]") {
  CHECK(parsed("999999999999ms") == milliseconds(999999999999LL));  // 12 digits: the most accepted
  CHECK(parsed("999999999999s") == milliseconds(999999999999000LL));
  auto too_long = parse_duration("999999999999d");  // 8.6e19 ms: more than int64 holds
  REQUIRE_FALSE(too_long);
  CHECK(too_long.error().find("too long") != std::string::npos);
  CHECK(parsed("999999999999h") == milliseconds(999999999999LL * 3600000));  // 3.6e18 ms: still fits
  CHECK_FALSE(parse_duration("1000000000000"));
  CHECK_FALSE(parse_duration("99999999999999999999999s"));  // would throw out of stoll
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
