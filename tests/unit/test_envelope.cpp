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
