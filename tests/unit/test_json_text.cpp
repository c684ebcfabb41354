#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/store.h"
#include "shared/ascii_run.h"
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

namespace {
// json_text(v, h) against nlohmann's dump: the same bytes, or the same
// exception.
void check_same_as_dump(const json& v, json::error_handler_t h) {
  std::string expected, error_expected, got, error_got;
  try {
    expected = v.dump(-1, ' ', false, h);
  } catch (const json::exception& e) {
    error_expected = e.what();
  }
  try {
    got = json_text(v, h);
  } catch (const json::exception& e) {
    error_got = e.what();
  }
  CHECK(got == expected);
  CHECK(error_got == error_expected);
}
}  // namespace

TEST_CASE("json text: json_text writes what dump writes, for every kind of value") {
  const std::vector<json> values = {
      json(nullptr), json(true), json(false), json(0), json(-1), json(INT64_MIN), json(INT64_MAX),
      json(uint64_t{0}), json(UINT64_MAX), json(0.0), json(-0.0), json(1.5), json(1e300), json(3.0),
      json(0.1), json(""), json("plain"), json("caf\xc3\xa9"), json("tab\there \"q\" \\ \x01 \x7f"),
      json::object(), json::array(), json::binary({1, 2, 3}),
      json{{"b", 1}, {"a", {1, "x", nullptr, 2.5, json::object(), json::array()}}, {"", ""}},
      json{{"k\"ey\n", {{"nested", {{"deep", {true, false}}}}}}},
      json::parse(R"({"id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c","email":"a@example.com","n":-12,"u":12})"),
      // Not valid UTF-8: in a value, in a key, alone and in a tree.
      json("a\xff" "b"), json("\xc3"), json("\xed\xa0\x80"), json("\xf4\x90\x80\x80"),
      json{{"ok", "x"}, {"bad", "\xc0\xaf"}}, json{{"bad\xff key", 1}}, json::array({"fine", "\x80"}),
  };
  for (const json& v : values) {
    INFO(v.dump(-1, ' ', true, json::error_handler_t::replace));
    check_same_as_dump(v, json::error_handler_t::replace);
    check_same_as_dump(v, json::error_handler_t::strict);
    check_same_as_dump(v, json::error_handler_t::ignore);
  }
}

TEST_CASE("json text: invalid UTF-8 under the strict handler throws as dump does") {
  CHECK_THROWS_AS(json_text(json{{"k", "\xff"}}, json::error_handler_t::strict), json::type_error);
  CHECK_NOTHROW(json_text(json{{"k", "\xff"}}));
}

TEST_CASE("json text: append_json appends to what is there") {
  std::string out = "prefix:";
  append_json(out, json{{"a", {1, 2}}});
  CHECK(out == R"(prefix:{"a":[1,2]})");
}

TEST_CASE("plain_ascii_run stops at the word holding the first byte a JSON string must look at", "[json_text]") {
  // Every byte value at every place of 17 bytes: the run covers the whole
  // 8-byte words before that byte, and never the odd byte at the end.
  for (int at = 0; at < 17; ++at) {
    for (int b = 0; b < 256; ++b) {
      std::string s(17, 'a');
      s[static_cast<size_t>(at)] = static_cast<char>(b);
      bool plain = b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
      size_t first = plain ? s.size() : static_cast<size_t>(at);
      INFO("byte " << b << " at " << at);
      CHECK(plain_ascii_run(s.data(), s.size()) == std::min<size_t>(first, 16) / 8 * 8);
    }
  }
  CHECK(plain_ascii_run("", 0) == 0);
  CHECK(plain_ascii_run("abcdefg", 7) == 0);
}
