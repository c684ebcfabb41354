// daemon/streams.h: the SSE event text and the /events filters.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "daemon/streams.h"
#include "shared/clock.h"

using namespace asyncops;

namespace {

FeedItem item(int64_t seq, const std::string& kind, const std::string& op_json, int64_t at = 0,
              const std::string& step = "") {
  FeedItem i;
  i.seq = seq;
  i.kind = kind;
  i.op_json = op_json;
  i.at = at;
  i.step = step;
  return i;
}

}  // namespace

TEST_CASE("an SSE event is its seq as id and the operation JSON as data, then a blank line", "[streams]") {
  CHECK(format_sse_event(item(42, "completed", R"({"id":"a"})"), false) == "id: 42\ndata: {\"id\":\"a\"}\n\n");
}

TEST_CASE("a CloudEvents SSE event wraps the operation in a 1.0 envelope", "[streams]") {
  int64_t at = 1700000000123;
  std::string text = format_sse_event(item(7, "processing", R"({"id":"op-1","state":"processing"})", at), true);
  REQUIRE(text.rfind("id: 7\ndata: ", 0) == 0);
  REQUIRE(text.size() > 2);
  CHECK(text.substr(text.size() - 2) == "\n\n");
  std::string data = text.substr(12, text.size() - 14);
  CHECK(data.find('\n') == std::string::npos);  // one data line
  auto ce = nlohmann::json::parse(data);
  CHECK(ce["specversion"] == "1.0");
  CHECK(ce["id"] == "7");
  CHECK(ce["source"] == "/operations");
  CHECK(ce["type"] == "asyncops.operation.processing");
  CHECK(ce["subject"] == "op-1");
  CHECK(ce["time"] == format_rfc3339_ms(at));
  CHECK(ce["datacontenttype"] == "application/json");
  CHECK(ce["data"] == nlohmann::json{{"id", "op-1"}, {"state", "processing"}});
  CHECK_FALSE(ce.contains("step"));  // an operation's own change has no step attribute
}

TEST_CASE("a saga step's SSE event: plain data is the operation, CloudEvents adds type and step", "[streams][saga]") {
  std::string op = R"({"id":"op-1","state":"processing","steps":[{"name":"charge","state":"rejected"}]})";
  // The plain form is the operation document, as for any change.
  CHECK(format_sse_event(item(9, "step_rejected", op, 0, "charge"), false) == "id: 9\ndata: " + op + "\n\n");
  std::string text = format_sse_event(item(9, "step_rejected", op, 1700000000123, "charge"), true);
  auto ce = nlohmann::json::parse(text.substr(std::string("id: 9\ndata: ").size()));
  CHECK(ce["type"] == "asyncops.operation.step_rejected");
  CHECK(ce["step"] == "charge");
  CHECK(ce["subject"] == "op-1");
  CHECK(ce["data"]["steps"][0]["state"] == "rejected");
  auto undo = nlohmann::json::parse(
      format_sse_event(item(10, "compensation_completed", op, 0, "reserve"), true).substr(std::string("id: 10\ndata: ").size()));
  CHECK(undo["type"] == "asyncops.operation.compensation_completed");
  CHECK(undo["step"] == "reserve");
}

TEST_CASE("a CloudEvents SSE event of JSON that is not an object has an empty subject", "[streams]") {
  std::string text = format_sse_event(item(1, "accepted", "[1]"), true);
  auto ce = nlohmann::json::parse(text.substr(std::string("id: 1\ndata: ").size()));
  CHECK(ce["subject"] == "");
  CHECK(ce["data"] == nlohmann::json::array({1}));
}

TEST_CASE("stream filters: owner, state and name must all match when given", "[streams]") {
  StreamRequest any;
  CHECK(stream_matches(any, "create_user", OpState::pending, "alice"));

  StreamRequest by_owner;
  by_owner.owner = "alice";
  CHECK(stream_matches(by_owner, "create_user", OpState::pending, "alice"));
  CHECK_FALSE(stream_matches(by_owner, "create_user", OpState::pending, "bob"));

  StreamRequest by_empty_owner;  // an owner filter of "" is a filter, not "any"
  by_empty_owner.owner = "";
  CHECK_FALSE(stream_matches(by_empty_owner, "create_user", OpState::pending, "alice"));

  StreamRequest by_state;
  by_state.state = OpState::completed;
  CHECK(stream_matches(by_state, "create_user", OpState::completed, "alice"));
  CHECK_FALSE(stream_matches(by_state, "create_user", OpState::failed, "alice"));

  StreamRequest by_all;
  by_all.owner = "alice";
  by_all.state = OpState::failed;
  by_all.name = "delete_user";
  CHECK(stream_matches(by_all, "delete_user", OpState::failed, "alice"));
  CHECK_FALSE(stream_matches(by_all, "create_user", OpState::failed, "alice"));
  CHECK_FALSE(stream_matches(by_all, "delete_user", OpState::completed, "alice"));
}
