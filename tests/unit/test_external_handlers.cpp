// The pure parts of the exec and http service kinds (issue 13); the runs
// themselves are covered by tests/integration/test_services.cpp.
#include <catch2/catch.hpp>

#include "workers/external/child_process.h"
#include "workers/external/exec_handler.h"
#include "workers/external/http_handler.h"

using namespace asyncops;

namespace {
Command command(const std::string& origin, const std::string& resource) {
  Command c;
  c.id = "01936f4e-2a7b-7c3d-9e4f-5a6b7c8d9e0f";
  c.name = "place_order";
  c.origin = origin;
  c.resource = resource;
  return c;
}
}  // namespace

TEST_CASE("exec output: completed with data, a delete, nothing, or bad output", "[external]") {
  Command c = command("POST /orders", "/orders/7");
  Outcome o = completed_from_output(c, R"({"id": "7", "item": "tea"})");
  CHECK(o.state == OpState::completed);
  CHECK(o.type == "place_order_completed");
  CHECK(o.resource == "/orders/7");
  CHECK(o.data["item"] == "tea");
  CHECK(completed_from_output(c, "\n").data.is_null());
  Command d = command("DELETE /orders/7", "");
  Outcome del = completed_from_output(d, R"({"deleted": true})");
  CHECK(del.deleted);
  CHECK(del.resource == "/orders/7");  // the request path, the one the daemon accepts
  Outcome bad = completed_from_output(c, "[1, 2]");
  CHECK(bad.state == OpState::failed);
  CHECK(bad.code == "bad_output");
  std::string deep(200, '[');
  CHECK(completed_from_output(c, deep + std::string(200, ']')).code == "bad_output");
}

TEST_CASE("exec output: a rejection's code and message", "[external]") {
  Command c = command("POST /orders", "/orders/7");
  Outcome r = rejected_from_output(c, R"({"code": "out_of_stock", "message": "no tea"})");
  CHECK(r.state == OpState::rejected);
  CHECK(r.code == "out_of_stock");
  CHECK(r.message == "no tea");
  Outcome plain = rejected_from_output(c, "no json here");
  CHECK(plain.code == "rejected");
  CHECK(plain.message == "no json here");
}

TEST_CASE("clean_text keeps valid UTF-8 and replaces the rest", "[external]") {
  CHECK(clean_text("caf\xC3\xA9 ok\n") == "caf\xC3\xA9 ok\n");
  CHECK(clean_text("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(clean_text("\xC3") == "\xEF\xBF\xBD");         // cut in two
  CHECK(clean_text("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(clean_text("bell\x07") == "bell ");
}

TEST_CASE("TailBuffer keeps the last bytes, from a line start", "[external]") {
  TailBuffer t(16);
  t.append("first line\n", 11);
  CHECK(t.text() == "first line");
  t.append("second line\nthird\n", 18);
  CHECK(t.text() == "…third");
}

TEST_CASE("http: the url's path from the route's params", "[external]") {
  nlohmann::json params = {{"id", "a b/c"}, {"n", "7"}};
  CHECK(expand_url_path("/orders/{id}/items/{n}", params).value() == "/orders/a%20b%2Fc/items/7");
  CHECK(expand_url_path("/static", params).value() == "/static");
  CHECK_FALSE(expand_url_path("/orders/{missing}", params));
  CHECK_FALSE(expand_url_path("/orders/{id", params));
}

TEST_CASE("http: Retry-After in seconds or as a date", "[external]") {
  CHECK(parse_retry_after("3") == 3000);
  CHECK(parse_retry_after(" 0 ") == 0);
  CHECK(parse_retry_after("soon") == -1);
  CHECK(parse_retry_after("") == -1);
  CHECK(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0);  // in the past: now
}

TEST_CASE("http: a rejection's code from problem+json", "[external]") {
  std::string pj = "application/problem+json";
  CHECK(rejection_code(422, pj, R"({"code":"out_of_stock","type":"https://x/probs/other"})") == "out_of_stock");
  CHECK(rejection_code(422, pj, R"({"type":"https://example.com/probs/out-of-stock"})") == "out-of-stock");
  CHECK(rejection_code(422, pj, R"({"type":"https://example.com/probs/out-of-stock/"})") == "out-of-stock");
  CHECK(rejection_code(404, pj, R"({"type":"about:blank","title":"Not Found"})") == "http_404");
  CHECK(rejection_code(400, "text/plain", "bad") == "http_400");
  CHECK(rejection_code(400, pj, "{not json") == "http_400");
}
