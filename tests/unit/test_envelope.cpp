#include <catch2/catch.hpp>

#include "shared/envelope.h"
#include "shared/ids.h"

using namespace asyncops;
using nlohmann::json;

TEST_CASE("a command survives encode and decode", "[envelope]") {
  Command c;
  c.id = new_uuid_v7();
  c.name = "create_user";
  c.service = "users";
  c.origin = "POST /users";
  c.resource = "/users/abc";
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
  Heartbeat h{"w1", "users", "host", 42, 3, {"0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"}, "2026-11-27T00:00:00.000Z"};
  auto d = decode_heartbeat(encode(h).body);
  REQUIRE(d.ok());
  CHECK(d->worker == "w1");
  CHECK(d->pid == 42);
  CHECK(d->in_flight == 3);
  CHECK(d->requests == h.requests);
  CHECK_FALSE(decode_heartbeat("{}").ok());
}

TEST_CASE("an event's version survives encode and decode, and is checked", "[envelope][version]") {
  Event e;
  e.request_id = new_uuid_v7();
  e.state = OpState::completed;
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
