#include <catch2/catch.hpp>

#include "cli/exit_codes.h"
#include "cli/output.h"
#include "shared/clock.h"

using namespace asyncops;

TEST_CASE("final states map to the documented exit codes", "[cli]") {
  CHECK(exit_code_for_state("completed") == 0);
  CHECK(exit_code_for_state("rejected") == 3);
  CHECK(exit_code_for_state("failed") == 4);
  CHECK(exit_code_for_state("canceled") == 4);
  CHECK(exit_code_for_state("pending") == 5);
}

TEST_CASE("relative times read like a person would say them", "[cli]") {
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 5000)) == "5s ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 3 * 60000)) == "3m ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 2 * 3600000)) == "2h ago");
  CHECK(relative_time(format_rfc3339_ms(now_ms() - 4 * 86400000LL)) == "4d ago");
  CHECK(relative_time("garbage").empty());
}

TEST_CASE("json output never carries colour", "[cli]") {
  Output o = Output::resolve("json", false);
  CHECK(o.format == OutputFormat::json);
  CHECK_FALSE(o.color);
  CHECK(o.state("completed") == "completed");
  CHECK(Output::resolve("", true).format == OutputFormat::json);
  CHECK(Output::resolve("jsonl", false).format == OutputFormat::jsonl);
}
