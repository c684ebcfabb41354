#include <catch2/catch.hpp>

#include "shared/envelope.h"
#include "shared/ids.h"
#include "command_of.h"

using namespace asyncops;
using nlohmann::json;

namespace {
// A minimal event: a worker's completion of a new request id.
Event completed_event() {
  Event e;
  e.request_id = new_uuid_v7();
  e.state = OpState::completed;
  return e;
}
}  // namespace

TEST_CASE("a command survives encode and decode", "[envelope]") {
  Command c = asyncops::test::command_of("create_user", "users", "POST /users", "/users/abc");
  c.params = {{"id", "abc"}};
  c.payload = {{"email", "a@example.com"}};
  c.created_at = "2026-11-27T00:00:00.000Z";
  c.attempt = 3;
  Frames f = encode(c);
  CHECK(f.kind == "command");
  auto d = decode_command(f.kind, f.body);
  REQUIRE(d.ok());
  CHECK(d->id == c.id);
  CHECK(d->name == c.name);
  CHECK(d->service == "users");
  CHECK(d->resource == "/users/abc");
  CHECK(d->params == c.params);
  CHECK(d->payload == c.payload);
  CHECK(d->attempt == 3);
}

TEST_CASE("an event survives encode and decode, with data or a deletion marker", "[envelope]") {
  Event e;
  e.request_id = new_uuid_v7();
  e.type = "user_created";
  e.state = OpState::completed;
  e.code = "success";
  e.resource = "/users/abc";
  e.data = {{"id", "abc"}};
  auto d = decode_event(encode(e).body);
  REQUIRE(d.ok());
  CHECK(d->state == OpState::completed);
  CHECK(d->data == e.data);
  CHECK_FALSE(d->deleted);

  e.data = nullptr;
  e.deleted = true;
  d = decode_event(encode(e).body);
  REQUIRE(d.ok());
  CHECK(d->deleted);
}

TEST_CASE("undecodable events are errors, not exceptions", "[envelope]") {
  std::string id = new_uuid_v7();
  CHECK_FALSE(decode_event("").ok());
  CHECK_FALSE(decode_event("{not json").ok());
  CHECK_FALSE(decode_event("[1,2]").ok());
  CHECK_FALSE(decode_event(R"({"state":"completed"})").ok());
  CHECK_FALSE(decode_event(R"({"request_id":"x","state":"completed"})").ok());
  CHECK_FALSE(decode_event(json{{"request_id", id}, {"state", "nonsense"}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", id}, {"state", "pending"}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", id}, {"state", "completed"}, {"code", 5}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", id}, {"state", "completed"}, {"v", 2}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", id}, {"state", "completed"}, {"deleted", true},
                                {"data", {{"a", 1}}}}.dump()).ok());
  auto err = decode_event(R"({"state":"completed"})");
  CHECK(err.error() == "missing field 'request_id'");
}

TEST_CASE("commands with the wrong kind or fields are rejected", "[envelope]") {
  CHECK_FALSE(decode_command("event", "{}").ok());
  CHECK_FALSE(decode_command("command", R"({"id":"x","name":"a"})").ok());
  CHECK_FALSE(decode_command("command", json{{"id", new_uuid_v7()}}.dump()).ok());
  CHECK_FALSE(decode_command("command", json{{"id", new_uuid_v7()}, {"name", "a"}, {"params", 1}}.dump()).ok());
}

TEST_CASE("a heartbeat survives encode and decode", "[envelope]") {
  Heartbeat h{"w1", "users", "host", 42, 3, {"0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"}, "2026-11-27T00:00:00.000Z", ""};
  auto d = decode_heartbeat(encode(h).body);
  REQUIRE(d.ok());
  CHECK(d->worker == "w1");
  CHECK(d->pid == 42);
  CHECK(d->in_flight == 3);
  CHECK(d->requests == h.requests);
  CHECK_FALSE(decode_heartbeat("{}").ok());
}

// Issue 15: peer-supplied messages are bounded before they are parsed.
namespace {

std::string nested_event(const std::string& id, int depth) {
  std::string data(static_cast<size_t>(depth), '[');
  data.append(static_cast<size_t>(depth), ']');
  return R"({"request_id":")" + id + R"(","state":"completed","data":)" + data + "}";
}

}  // namespace

TEST_CASE("an event nested 100,000 deep is refused as too_deep, not a crash", "[envelope][limits]") {
  std::string id = new_uuid_v7();
  Refusal why = Refusal::malformed;
  auto d = decode_event(nested_event(id, 100000), &why);
  REQUIRE_FALSE(d.ok());
  CHECK(why == Refusal::too_deep);
  CHECK(d.error().find("128 levels") != std::string::npos);
  // Brackets inside strings are not nesting.
  std::string in_string = R"({"request_id":")" + id + R"(","state":"completed","data":{"s":")" +
                          std::string(100000, '[') + R"("}})";
  CHECK(decode_event(in_string).ok());
  // The deepest allowed: the envelope is level 1, so data may nest 127.
  CHECK(decode_event(nested_event(id, k_max_message_depth - 1)).ok());
  why = Refusal::malformed;
  CHECK_FALSE(decode_event(nested_event(id, k_max_message_depth), &why).ok());
  CHECK(why == Refusal::too_deep);
  // An escaped quote does not end a string early.
  std::string escaped = R"({"request_id":")" + id + R"(","state":"completed","data":{"s":"\"[[[[["}})";
  CHECK(decode_event(escaped).ok());
}

TEST_CASE("an event over 1 MiB is refused as too_large before it is parsed", "[envelope][limits]") {
  std::string id = new_uuid_v7();
  Event e;
  e.request_id = id;
  e.state = OpState::completed;
  e.data = {{"blob", std::string(k_max_event_bytes, 'x')}};
  Refusal why = Refusal::malformed;
  auto d = decode_event(encode(e).body, &why);
  REQUIRE_FALSE(d.ok());
  CHECK(why == Refusal::too_large);
  e.data = {{"blob", std::string(k_max_event_bytes - 1000, 'x')}};
  CHECK(decode_event(encode(e).body).ok());
}

TEST_CASE("an event with too many values is refused as too_many_fields", "[envelope][limits]") {
  Event e = completed_event();
  e.data = json::array();
  for (size_t i = 0; i < k_max_event_values; ++i) e.data.push_back(1);
  Refusal why = Refusal::malformed;
  auto d = decode_event(encode(e).body, &why);
  REQUIRE_FALSE(d.ok());
  CHECK(why == Refusal::too_many_fields);
  e.data = json::array();
  for (size_t i = 0; i < k_max_event_values - 100; ++i) e.data.push_back(1);
  CHECK(decode_event(encode(e).body).ok());
}

TEST_CASE("over-long ids in an event are refused as field_too_long", "[envelope][limits]") {
  Event e = completed_event();
  e.worker = std::string(k_max_id_bytes + 1, 'w');
  Refusal why = Refusal::malformed;
  CHECK_FALSE(decode_event(encode(e).body, &why).ok());
  CHECK(why == Refusal::field_too_long);
  e.worker = std::string(k_max_id_bytes, 'w');
  CHECK(decode_event(encode(e).body).ok());
  e.message = std::string(k_max_message_bytes + 1, 'm');
  CHECK_FALSE(decode_event(encode(e).body).ok());
}

TEST_CASE("check_event_limits refuses a deep outcome without dumping it", "[envelope][limits]") {
  Event e = completed_event();
  e.data = json::array();
  json* inner = &e.data;
  for (int i = 0; i < 100000; ++i) {
    inner->push_back(json::array());
    inner = &(*inner)[0];
  }
  auto r = check_event_limits(e);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().find("nests more than") != std::string::npos);
  e.data = {{"name", "fine"}};
  CHECK(check_event_limits(e).ok());
}

TEST_CASE("a command nested too deep or too large is refused in the worker's decoder", "[envelope][limits]") {
  std::string id = new_uuid_v7();
  std::string deep(100000, '[');
  deep.append(100000, ']');
  Refusal why = Refusal::malformed;
  auto d = decode_command("command", R"({"id":")" + id + R"(","name":"a","payload":)" + deep + "}", &why);
  REQUIRE_FALSE(d.ok());
  CHECK(why == Refusal::too_deep);
  std::string big = R"({"id":")" + id + R"(","name":"a","payload":")" + std::string(k_max_command_bytes, 'x') + "\"}";
  CHECK_FALSE(decode_command("command", big, &why).ok());
  CHECK(why == Refusal::too_large);
  CHECK_FALSE(decode_cancel(R"({"request_id":")" + id + R"(","x":)" + deep + "}", &why).ok());
  CHECK(why == Refusal::too_large);  // a cancel notice is at most 4096 bytes: size is checked first
  std::string deep200 = std::string(200, '[') + std::string(200, ']');
  CHECK_FALSE(decode_cancel(R"({"request_id":")" + id + R"(","x":)" + deep200 + "}", &why).ok());
  CHECK(why == Refusal::too_deep);
}

TEST_CASE("a heartbeat with too many request ids or over-long ids is refused", "[envelope][limits]") {
  Heartbeat h{"w1", "users", "host", 42, 3, {}, "2026-11-27T00:00:00.000Z", ""};
  for (size_t i = 0; i < k_max_heartbeat_requests; ++i) h.requests.push_back(new_uuid_v7());
  REQUIRE(decode_heartbeat(encode(h).body).ok());  // exactly the cap: fine
  h.requests.push_back(new_uuid_v7());
  Refusal why = Refusal::malformed;
  CHECK_FALSE(decode_heartbeat(encode(h).body, &why).ok());
  CHECK(why == Refusal::too_many_ids);
  h.requests.resize(50000, new_uuid_v7());
  CHECK_FALSE(decode_heartbeat(encode(h).body, &why).ok());
  CHECK((why == Refusal::too_many_ids || why == Refusal::too_large));

  Heartbeat big{std::string(1 << 20, 'w'), "users", "host", 1, 0, {}, "", ""};
  CHECK_FALSE(decode_heartbeat(encode(big).body, &why).ok());
  CHECK(why == Refusal::too_large);
  big.worker = std::string(k_max_id_bytes + 1, 'w');
  CHECK_FALSE(decode_heartbeat(encode(big).body, &why).ok());
  CHECK(why == Refusal::field_too_long);
  big.worker = "w";
  big.host = std::string(k_max_host_bytes + 1, 'h');
  CHECK_FALSE(decode_heartbeat(encode(big).body, &why).ok());
  CHECK(why == Refusal::field_too_long);
  big.host = "h";
  big.requests = {std::string(k_max_request_id_bytes + 1, 'r')};
  CHECK_FALSE(decode_heartbeat(encode(big).body, &why).ok());
  CHECK(why == Refusal::field_too_long);
}

TEST_CASE("peek_request_id finds the id in a body it does not parse", "[envelope][limits]") {
  std::string id = new_uuid_v7();
  CHECK(peek_request_id(nested_event(id, 100000)) == id);
  CHECK(peek_request_id(R"({"request_id" : ")" + id + "\"}") == id);
  CHECK(peek_request_id(R"({"request_id":"short"})").empty());
  CHECK(peek_request_id("garbage").empty());
  CHECK(peek_request_id(R"({"request_id":")").empty());
}

TEST_CASE("an event's version survives encode and decode, and is checked", "[envelope][version]") {
  Event e = completed_event();
  CHECK(json::parse(encode(e).body).count("version") == 0);  // 0: not sent
  e.version = 42;
  CHECK(json::parse(encode(e).body)["version"] == 42);
  auto d = decode_event(encode(e).body);
  REQUIRE(d.ok());
  CHECK(d->version == 42);
  CHECK(decode_event(json{{"request_id", e.request_id}, {"state", "completed"}}.dump())->version == 0);
  CHECK_FALSE(decode_event(json{{"request_id", e.request_id}, {"state", "completed"}, {"version", "3"}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", e.request_id}, {"state", "completed"}, {"version", 1.5}}.dump()).ok());
  CHECK_FALSE(decode_event(json{{"request_id", e.request_id}, {"state", "completed"}, {"version", -1}}.dump()).ok());
}

TEST_CASE("a fence notice survives encode and decode", "[envelope][fence]") {
  FenceNotice f{new_uuid_v7(), "users"};
  Frames frames = encode(f);
  CHECK(frames.kind == "fence");
  auto d = decode_fence(frames.body);
  REQUIRE(d.ok());
  CHECK(d->request_id == f.request_id);
  CHECK(d->service == "users");
  CHECK(decode_fence(json{{"v", 1}, {"request_id", f.request_id}}.dump())->service.empty());
  CHECK_FALSE(decode_fence(json{{"request_id", "nope"}}.dump()).ok());
  CHECK_FALSE(decode_fence(json{{"request_id", f.request_id}, {"service", 3}}.dump()).ok());
}
