#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "store/store.h"
#include "shared/envelope.h"
#include "shared/json_text.h"
#include "store_fixture.h"

using namespace asyncops;
using asyncops::test::new_op;
using nlohmann::json;

namespace {
std::string as_json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}
std::string nlohmann_text(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

TEST_CASE("json text: strings are escaped as nlohmann escapes them") {
  for (std::string s : {std::string(""), std::string("plain"), std::string("quote \" and back\\slash"),
                        std::string("tab\tnew\nline\rcr\bbs\fff"), std::string("\x01\x1f ctl"),
                        std::string("del \x7f"), std::string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                        std::string("nul\0in", 6)}) {
    CHECK(as_json_string(s) == nlohmann_text(s));
  }
}

TEST_CASE("json text: invalid UTF-8 becomes U+FFFD and the text parses") {
  const std::string replacement = "\xEF\xBF\xBD";
  CHECK(as_json_string("a\xff" "b") == "\"a" + replacement + "b\"");
  CHECK(as_json_string("\xc3") == "\"" + replacement + "\"");                    // truncated
  CHECK(as_json_string("\xc0\xaf") == "\"" + replacement + replacement + "\"");  // overlong
  CHECK(as_json_string("\xed\xa0\x80").find(replacement) != std::string::npos);   // surrogate
  CHECK(as_json_string("\xf4\x90\x80\x80").find(replacement) != std::string::npos);  // past U+10FFFF
  for (std::string bad : {std::string("\x80"), std::string("x\xe2\x82"), std::string("\xf0\x9f\x98")}) {
    CHECK_NOTHROW(json::parse(as_json_string(bad)));
  }
}

TEST_CASE("json text: an object writer gives nlohmann's bytes for sorted keys") {
  std::string out;
  JsonObjectWriter w(out);
  w.number("a", -5).boolean("b", true).string_or_null("c", "").string("d", "x\"y").value("e", json{{"k", {1, 2}}});
  w.close();
  json expected = {{"a", -5}, {"b", true}, {"c", nullptr}, {"d", "x\"y"}, {"e", {{"k", {1, 2}}}}};
  CHECK(out == expected.dump());
}

TEST_CASE("json text: commands and events encode to the same text as a json tree would") {
  Command c;
  c.id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
  c.name = "create_user";
  c.service = "users";
  c.origin = "POST /users";
  c.resource = "/users/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";
  c.params = {{"id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"}};
  c.payload = {{"email", "a@example.com"}, {"name", "Zoë"}};
  c.created_at = "2026-11-27T10:00:00.000Z";
  c.attempt = 2;
  c.cancel = true;
  json jc = {{"v", k_protocol_version}, {"id", c.id}, {"name", c.name}, {"service", c.service},
             {"origin", c.origin}, {"resource", c.resource}, {"params", c.params}, {"payload", c.payload},
             {"created_at", c.created_at}, {"attempt", c.attempt}, {"cancel", true}};
  CHECK(encode(c).body == jc.dump());
  auto back = decode_command(encode(c).kind, encode(c).body);
  REQUIRE(back);
  CHECK(back->payload == c.payload);
  CHECK(back->cancel);

  Event e;
  e.request_id = c.id;
  e.type = "user_created";
  e.state = OpState::completed;
  e.code = "success";
  e.message = "line\nbreak";
  e.resource = c.resource;
  e.data = {{"id", "x"}};
  e.worker = "host/1/abc";
  e.attempt = 3;
  e.time = "2026-11-27T10:00:00.001Z";
  json je = {{"v", k_protocol_version}, {"request_id", e.request_id}, {"type", e.type}, {"state", "completed"},
             {"worker", e.worker}, {"attempt", 3}, {"time", e.time}, {"code", e.code}, {"message", e.message},
             {"resource", e.resource}, {"data", e.data}};
  CHECK(encode(e).body == je.dump());
  e.data = nullptr;
  e.deleted = true;
  e.code.clear();
  e.message.clear();
  json jd = {{"v", k_protocol_version}, {"request_id", e.request_id}, {"type", e.type}, {"state", "completed"},
             {"worker", e.worker}, {"attempt", 3}, {"time", e.time}, {"resource", e.resource}, {"deleted", true}};
  CHECK(encode(e).body == jd.dump());
}

TEST_CASE("json text: an operation's text is its json tree's text") {
  OperationRecord op = new_op();
  op.updated_at = op.created_at + 123;
  op.attempt = 1;
  CHECK(operation_json_text(op) == operation_json(op).dump());
  op.state = OpState::rejected;
  op.code = "email_in_use";
  op.message = "the email \"a@b.c\" is already in use \xff";
  op.cancel_requested = true;
  CHECK(operation_json_text(op) == operation_json(op).dump(-1, ' ', false, json::error_handler_t::replace));
}
