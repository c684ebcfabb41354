#include <catch2/catch.hpp>

#include "shared/envelope.h"
#include "shared/ids.h"
#include "store/saga.h"
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

TEST_CASE("check_encoded_event answers as decoding the text would, at and over each limit", "[envelope][limits]") {
  std::vector<std::pair<std::string, Event>> cases;
  auto add = [&](std::string label, auto change) {
    Event e = completed_event();
    e.type = "user_created";
    e.code = "success";
    e.worker = "w-1";
    e.time = "2026-11-30T23:00:00.000Z";
    e.resource = "/users/abc";
    e.data = {{"id", "abc"}, {"name", "Ann"}};
    change(e);
    cases.emplace_back(std::move(label), std::move(e));
  };
  add("plain", [](Event&) {});
  add("no data", [](Event& e) { e.data = nullptr; });
  add("processing", [](Event& e) { e.state = OpState::processing; e.code.clear(); e.data = nullptr; });
  add("pending", [](Event& e) { e.state = OpState::pending; });
  add("deleted and data", [](Event& e) { e.deleted = true; });
  add("deleted", [](Event& e) { e.deleted = true; e.data = nullptr; });
  add("negative version", [](Event& e) { e.version = -1; });
  add("version", [](Event& e) { e.version = 7; });
  add("discarded data", [](Event& e) { e.data = json(json::value_t::discarded); });
  add("not a request id", [](Event& e) { e.request_id = "nope"; });
  add("request id too long", [](Event& e) { e.request_id = std::string(k_max_request_id_bytes + 1, 'a'); });
  struct Field {
    const char* name;
    std::string Event::*member;
    size_t max;
  };
  for (Field f : {Field{"type", &Event::type, k_max_id_bytes}, Field{"code", &Event::code, k_max_id_bytes},
                  Field{"worker", &Event::worker, k_max_id_bytes}, Field{"time", &Event::time, k_max_id_bytes},
                  Field{"message", &Event::message, k_max_message_bytes},
                  Field{"resource", &Event::resource, k_max_resource_bytes}}) {
    std::string at(f.max, 'x');
    add(std::string(f.name) + " at its limit", [&](Event& e) { e.*f.member = at; });
    add(std::string(f.name) + " over its limit", [&](Event& e) { e.*f.member = at + "x"; });
    // One byte that is not UTF-8 is written as U+FFFD (3 bytes): at the
    // limit before encoding, over it once read back.
    add(std::string(f.name) + " at its limit with a stray byte",
        [&](Event& e) { e.*f.member = std::string(f.max - 1, 'x') + "\xff"; });
    add(std::string(f.name) + " with a stray byte", [&](Event& e) { e.*f.member = "x\xff"; });
    add(std::string(f.name) + " with a character over the limit's edge",
        [&](Event& e) { e.*f.member = std::string(f.max - 1, 'x') + "\xc3\xa9"; });
  }
  add("values at the limit's edge", [](Event& e) {
    e.data = json::array();
    for (size_t i = 0; i + 40 < k_max_event_values; ++i) e.data.push_back(1);
  });
  add("values over the limit", [](Event& e) {
    e.data = json::array();
    for (size_t i = 0; i < k_max_event_values; ++i) e.data.push_back(1);
  });
  add("commas inside strings", [](Event& e) {
    e.data = json::array();
    for (size_t i = 0; i + 40 < k_max_event_values; ++i) e.data.push_back(",,,,");
  });
  add("nested to the limit", [](Event& e) {
    e.data = json::array();
    json* inner = &e.data;
    for (int i = 1; i < k_max_message_depth - 1; ++i) {
      inner->push_back(json::array());
      inner = &(*inner)[0];
    }
  });
  add("a string near the size limit", [](Event& e) { e.data = std::string(k_max_event_bytes - 400, 'd'); });
  add("a string over the size limit", [](Event& e) { e.data = std::string(k_max_event_bytes, 'd'); });
  add("escapes near the size limit", [](Event& e) { e.data = std::string((k_max_event_bytes - 400) / 2, '"'); });
  add("escapes over the size limit", [](Event& e) { e.data = std::string(k_max_event_bytes / 2 + 1, '"'); });

  for (auto& [label, e] : cases) {
    INFO(label);
    std::string body = encode(e).body;
    Status fast = check_encoded_event(e, body);
    auto decoded = decode_event(body);
    REQUIRE(fast.ok() == decoded.ok());
    if (!fast.ok()) CHECK(fast.error() == decoded.error());
  }
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

namespace {
// A saga's step command (docs/protocol.md §4b): step of operation op, or
// its compensation.
Command step_command(const std::string& op, const std::string& step, bool compensation) {
  Command c;
  c.id = op + "." + step + (compensation ? ".undo" : "");
  c.name = compensation ? "release_stock" : "reserve_stock";
  c.service = "inventory";
  c.origin = "POST /orders";
  c.resource = "/orders/abc";
  c.params = {{"id", "abc"}};
  c.payload = {{"sku", "apple"}, {"qty", 2}};
  c.created_at = "2026-11-30T00:00:00.000Z";
  c.saga = SagaRef{op, step, compensation};
  return c;
}
}  // namespace

TEST_CASE("is_request_id: a UUID, UUID.step or UUID.step.undo, and nothing else", "[envelope][saga]") {
  std::string op = new_uuid_v7();
  for (const std::string& ok : {op, op + ".charge", op + ".charge.undo", op + ".undo", op + ".undo.undo",
                                op + "." + std::string(k_max_step_name_bytes, 'a') + ".undo", op + ".A-b_9"}) {
    CAPTURE(ok);
    CHECK(is_request_id(ok));
    CHECK(ok.size() <= k_max_request_id_bytes);
    // The saga's parser reads the same grammar (a bare UUID names no step).
    CHECK(saga::parse_step_request_id(ok).has_value() == (ok != op));
  }
  for (const std::string& bad : {std::string(), std::string("charge"), op + ".", op + "..undo", op + ".charge.",
                                 op + ".a.b", op + ".charge.undo.undo", op + "." + std::string(k_max_step_name_bytes + 1, 'a'),
                                 op + ".char ge", op + ".charge/undo", op.substr(1) + "x.charge", "x" + op.substr(1),
                                 op + "charge", op.substr(0, 35)}) {
    CAPTURE(bad);
    CHECK_FALSE(is_request_id(bad));
    CHECK_FALSE(saga::parse_step_request_id(bad).has_value());
  }
}

TEST_CASE("a saga step command survives encode and decode with saga and steps", "[envelope][saga]") {
  std::string op = new_uuid_v7();
  Command c = step_command(op, "charge", false);
  c.steps = {{"reserve", {{"data", {{"reservation", "r-1"}, {"qty", 2}}}}}};
  c.attempt = 2;
  c.cancel = true;
  Frames f = encode(c);
  json body = json::parse(f.body);
  CHECK(body["saga"] == json({{"operation", op}, {"step", "charge"}, {"compensation", false}}));
  CHECK(body["steps"] == c.steps);
  CHECK(f.body == body.dump());  // keys in sorted order, as the other fields
  auto d = decode_command(f.kind, f.body);
  REQUIRE(d.ok());
  CHECK(d->id == op + ".charge");
  CHECK(d->saga.operation == op);
  CHECK(d->saga.step == "charge");
  CHECK_FALSE(d->saga.compensation);
  CHECK(d->steps == c.steps);
  CHECK(d->payload == c.payload);
  CHECK(d->attempt == 2);
  CHECK(d->cancel);

  Command undo = step_command(op, "reserve", true);
  undo.steps = {{"reserve", {{"data", {{"reservation", "r-1"}}}}}};
  d = decode_command("command", encode(undo).body);
  REQUIRE(d.ok());
  CHECK(d->id == op + ".reserve.undo");
  CHECK(d->saga.compensation);
  CHECK(d->steps == undo.steps);
}

TEST_CASE("a plain command has no saga or steps on the wire", "[envelope][saga]") {
  Command c = asyncops::test::command_of("create_user", "users");
  json body = json::parse(encode(c).body);
  CHECK(body.count("saga") == 0);
  CHECK(body.count("steps") == 0);
  auto d = decode_command("command", encode(c).body);
  REQUIRE(d.ok());
  CHECK(d->saga.operation.empty());
  CHECK(d->steps.is_null());
}

TEST_CASE("a command's lease and max_attempts are the dispatcher's, never on the wire", "[envelope][saga]") {
  Command c = step_command(new_uuid_v7(), "charge", false);
  c.lease = std::chrono::milliseconds(10000);
  c.max_attempts = k_unlimited_attempts;
  Frames f = encode(c);
  CHECK(f.body.find("lease") == std::string::npos);
  CHECK(f.body.find("max_attempts") == std::string::npos);
  auto d = decode_command(f.kind, f.body);
  REQUIRE(d.ok());
  CHECK(d->lease.count() == 0);
  CHECK(d->max_attempts == 0);
}

TEST_CASE("a step command whose saga and id disagree, or that is bounded out, is refused", "[envelope][saga][limits]") {
  std::string op = new_uuid_v7();
  json good = json::parse(encode(step_command(op, "charge", false)).body);
  auto refused = [](const json& body, Refusal expected) {
    Refusal why = Refusal::malformed;
    auto d = decode_command("command", body.dump(), &why);
    CHECK_FALSE(d.ok());
    CHECK(why == expected);
    return d.ok() ? std::string() : d.error();
  };
  REQUIRE(decode_command("command", good.dump()).ok());

  json b = good;
  b.erase("saga");
  CHECK(refused(b, Refusal::malformed).find("'saga' is missing") != std::string::npos);
  b = good;
  b["saga"]["step"] = "reserve";  // id says charge
  refused(b, Refusal::malformed);
  b = good;
  b["saga"]["compensation"] = true;  // id has no .undo
  refused(b, Refusal::malformed);
  b = good;
  b["saga"]["operation"] = new_uuid_v7();
  refused(b, Refusal::malformed);
  b = good;
  b["saga"] = "charge";
  refused(b, Refusal::malformed);
  b = good;
  b["saga"]["compensation"] = "no";
  refused(b, Refusal::malformed);
  b = good;
  b["saga"]["step"] = std::string(k_max_step_name_bytes + 1, 's');
  refused(b, Refusal::field_too_long);
  b = good;
  b["id"] = op + ".ch.arge";
  refused(b, Refusal::malformed);
  b = good;
  b["id"] = op + "." + std::string(k_max_request_id_bytes, 'a');
  refused(b, Refusal::field_too_long);

  b = good;
  b["steps"] = json::array();
  refused(b, Refusal::malformed);
  b = good;
  b["steps"] = {{"reserve", 1}};
  refused(b, Refusal::malformed);
  b = good;
  b["steps"] = {{"re.serve", {{"data", 1}}}};
  refused(b, Refusal::malformed);
  b = good;
  b["steps"] = json::object();
  for (size_t i = 0; i <= k_max_saga_steps; ++i) b["steps"]["s" + std::to_string(i)] = {{"data", nullptr}};
  refused(b, Refusal::too_many_fields);

  // A step's data is peer-supplied: bounded in depth and size like any body.
  std::string text = good.dump();
  std::string deep = std::string(200, '[') + std::string(200, ']');
  text.insert(text.size() - 1, R"(,"steps":{"reserve":{"data":)" + deep + "}}");
  Refusal why = Refusal::malformed;
  CHECK_FALSE(decode_command("command", text, &why).ok());
  CHECK(why == Refusal::too_deep);
  b = good;
  b["steps"] = {{"reserve", {{"data", std::string(k_max_command_bytes, 'x')}}}};
  refused(b, Refusal::too_large);
}

TEST_CASE("every request-id field takes a saga step's id", "[envelope][saga]") {
  std::string op = new_uuid_v7();
  std::string step = op + ".charge", undo = op + ".reserve.undo";
  Event e = completed_event();
  e.request_id = step;
  auto ev = decode_event(encode(e).body);
  REQUIRE(ev.ok());
  CHECK(ev->request_id == step);
  e.request_id = undo;
  CHECK(decode_event(encode(e).body).ok());
  e.request_id = op + ".charge.x";
  CHECK_FALSE(decode_event(encode(e).body).ok());

  CHECK(decode_cancel(encode(CancelNotice{step}).body)->request_id == step);
  CHECK_FALSE(decode_cancel(encode(CancelNotice{op + ".a b"}).body).ok());
  CHECK(decode_fence(encode(FenceNotice{undo, "inventory"}).body)->request_id == undo);
  CHECK_FALSE(decode_fence(encode(FenceNotice{"nope", "inventory"}).body).ok());

  Heartbeat h{"w1", "payments", "host", 42, 2, {step, undo, op}, "2026-11-30T00:00:00.000Z", ""};
  auto hb = decode_heartbeat(encode(h).body);
  REQUIRE(hb.ok());
  CHECK(hb->requests == h.requests);
  h.requests.push_back("not-a-request-id");
  CHECK_FALSE(decode_heartbeat(encode(h).body).ok());

  ClaimMessage claim{{{step, 2}, {undo, 1}}};
  auto cl = decode_claim(encode(claim).body);
  REQUIRE(cl.ok());
  CHECK(cl->claims[0].id == step);
  CHECK(cl->claims[1].id == undo);
  GrantMessage grant;
  grant.lease_ms = 10000;
  grant.granted = {{step, 2, true, ""}};
  grant.refused = {{undo, 1, false, "lease_lost"}};
  auto gr = decode_grant(encode(grant).body);
  REQUIRE(gr.ok());
  CHECK(gr->granted[0].id == step);
  CHECK(gr->refused[0].id == undo);
  CHECK_FALSE(decode_claim(json{{"claims", {{{"id", op + ".x.y"}, {"attempt", 1}}}}}.dump()).ok());

  CHECK(peek_request_id(R"({"request_id":")" + step + R"(","state":[[[)") == step);
  CHECK(peek_request_id(R"({"request_id":")" + undo + "\"}") == undo);
  CHECK(peek_request_id(R"({"request_id":")" + op + ".a.b\"}").empty());
  CHECK(peek_request_id(R"({"request_id":")" + op + std::string(100, 'x')).empty());
}
