// shared/log.h: the level names of --log-level.
#include <catch2/catch.hpp>

#include "shared/log.h"

using namespace asyncops;

TEST_CASE("log levels parse by name, and any other text is an error naming it", "[log]") {
  CHECK(parse_log_level("debug").value() == LogLevel::debug);
  CHECK(parse_log_level("info").value() == LogLevel::info);
  CHECK(parse_log_level("warn").value() == LogLevel::warn);
  CHECK(parse_log_level("error").value() == LogLevel::error);
  auto bad = parse_log_level("loud");
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "'loud' is not a log level (debug, info, warn or error)");
  CHECK_FALSE(parse_log_level("INFO"));
}
