#include <catch2/catch.hpp>

#include "daemon/metrics.h"

using namespace asyncops;

TEST_CASE("a histogram counts each observation in its bucket, cumulatively", "[metrics]") {
  Histogram h;
  h.observe(0.3);
  h.observe(7);
  h.observe(20000);
  std::string text = h.render("x_seconds", "help");
  CHECK(text.find("x_seconds_bucket{le=\"0.0005\"} 1\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{le=\"10\"} 2\n") != std::string::npos);
  CHECK(text.find("x_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("x_seconds_count 3\n") != std::string::npos);
  CHECK(text.find("# TYPE x_seconds histogram") != std::string::npos);
}

TEST_CASE("per-command counters follow each terminal state", "[metrics]") {
  Metrics m({"create_user", "delete_user"});
  m.accepted("create_user", 1.5);
  m.finished("create_user", "rejected", 12);
  m.finished("delete_user", "canceled", 3);
  m.finished("unknown_command", "completed", 1);  // not in the table: counted in the histogram only
  std::string text = m.render();
  CHECK(text.find("asyncops_commands_accepted_total{command=\"create_user\"} 1\n") != std::string::npos);
  CHECK(text.find("asyncops_commands_rejected_total{command=\"create_user\"} 1\n") != std::string::npos);
  CHECK(text.find("asyncops_commands_canceled_total{command=\"delete_user\"} 1\n") != std::string::npos);
  CHECK(text.find("asyncops_end_to_end_latency_seconds_count 3\n") != std::string::npos);
}
