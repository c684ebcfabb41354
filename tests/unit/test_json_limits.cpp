#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <vector>

#include "daemon/routes.h"
#include "shared/config.h"
#include "shared/json_limits.h"
#include "json_types.h"
#include "store_fixture.h"

using namespace asyncops;
using asyncops::test::same_types;

TEST_CASE("parse_json_within refuses each limit with its own violation", "[json_limits]") {
  JsonLimits lim;
  lim.max_bytes = 100;
  lim.max_depth = 3;
  lim.max_values = 5;
  lim.max_string_bytes = 4;
  CHECK(parse_json_within(std::string(101, ' '), lim).violation == JsonViolation::too_large);
  CHECK(parse_json_within("[[[[]]]]", lim).violation == JsonViolation::too_deep);
  CHECK(parse_json_within("[[[]]]", lim).violation == JsonViolation::none);
  CHECK(parse_json_within("[1,2,3,4,5,6]", lim).violation == JsonViolation::too_many_values);
  CHECK(parse_json_within(R"(["abcde"])", lim).violation == JsonViolation::string_too_long);
  CHECK(parse_json_within(R"({"abcde":1})", lim).violation == JsonViolation::string_too_long);
  CHECK(parse_json_within("[1,", lim).violation == JsonViolation::invalid);
  auto ok = parse_json_within(R"({"a":[1,2]})", lim);
  REQUIRE(ok.violation == JsonViolation::none);
  CHECK(ok.value["a"][1] == 2);
  CHECK(parse_json_within("[[[[]]]]", lim).value.is_discarded());
}

// parse_json_within takes nlohmann's plain parser when a scan of the raw
// text bounds the values and the strings within the limits, and the
// counting parser otherwise: both must give the same answer.
TEST_CASE("parse_json_within answers the same at, under and over each limit", "[json_limits]") {
  const std::vector<std::string> texts = {
      R"({"a":[1,2,{"b":null}],"c":"x\"y","d":true,"e":-1.5e3,"f":[],"g":{}})",
      R"([1,2,3,4,5,6])",
      R"(["\u00e9\u00e9","\n\n\n\n"])",  // escapes: the raw text is longer than the strings
      R"({"k":{"k":{"k":"v"}}})",
      R"("one string")",
      R"(42)",
      R"([[],[[]],{}])",
  };
  for (const std::string& t : texts) {
    INFO(t);
    auto generous = parse_json_within(t, JsonLimits{});
    REQUIRE(generous.violation == JsonViolation::none);
    const nlohmann::json expected = nlohmann::json::parse(t);
    CHECK(generous.value == expected);
    // The exact count of values and keys the limit counts, and the longest
    // decoded string or key.
    size_t values = 0, longest = 0;
    nlohmann::json counted = nlohmann::json::parse(t, [&](int, nlohmann::json::parse_event_t ev, nlohmann::json& v) {
      using E = nlohmann::json::parse_event_t;
      if (ev == E::key || ev == E::value || ev == E::object_start || ev == E::array_start) ++values;
      if ((ev == E::key || ev == E::value) && v.is_string())
        longest = std::max(longest, v.get_ref<const std::string&>().size());
      return true;
    });
    CHECK(counted == expected);
    JsonLimits at;
    at.max_values = values;
    at.max_string_bytes = longest;
    auto exact = parse_json_within(t, at);
    CHECK(exact.violation == JsonViolation::none);
    CHECK(exact.value == expected);
    JsonLimits fewer = at;
    fewer.max_values = values - 1;
    CHECK(parse_json_within(t, fewer).violation == JsonViolation::too_many_values);
    if (longest > 0) {
      JsonLimits shorter = at;
      shorter.max_string_bytes = longest - 1;
      CHECK(parse_json_within(t, shorter).violation == JsonViolation::string_too_long);
    }
  }
  // Invalid text is invalid on both paths.
  JsonLimits tight;
  tight.max_values = 2;
  CHECK(parse_json_within("[1,2,", JsonLimits{}).violation == JsonViolation::invalid);
  CHECK(parse_json_within("{\"a\" 1}", tight).violation == JsonViolation::invalid);
  CHECK(parse_json_within("[1] [2]", JsonLimits{}).violation == JsonViolation::invalid);
}


TEST_CASE("parse_json_members_within gives parse_json_within's members and refusals, and its trees are nlohmann's", "[json_limits]") {
  const std::vector<std::string> texts = {
      R"({"a":[1,2,{"b":null}],"c":"x\"y","d":true,"e":-1.5e3,"f":[],"g":{},"h":18446744073709551615})",
      R"({"k":{"k":{"k":"v"}},"l":[[1,[2,{"m":[3]}]],{}],"n":"\u00e9"})",
      R"({"dup":1,"x":2,"dup":{"a":[1]},"dup":"last"})",  // a repeated key keeps its last value
      R"({"o":{"dup":1,"dup":[2]}})",
      R"( { "spaced" : [ 1 , 2 ] } )",
      R"({})",
      R"([1,2,3])",      // not an object
      R"("one string")",
      R"(42)",
      R"({"a":1} {"b":2})",  // trailing text
      R"({"a":1,})",
      R"({"a" 1})",
      R"({"a":[1,2})",
      "{\"a\":\"\xff\"}",  // not UTF-8
      "",
      std::string(200, '[') + std::string(200, ']'),
      "{\"deep\":" + std::string(100, '[') + std::string(100, ']') + "}",
      // The edges of the plain subset read without nlohmann's lexer, and
      // what lies just past them (read by nlohmann's parser again).
      R"({"z":0,"m":-0,"p":7,"n":-7,"b18":999999999999999999,"nb18":-999999999999999999})",
      R"({"b19":1000000000000000000,"nb19":-1000000000000000000,"f":0.5,"e":1e2,"E":2E-1})",
      R"({"lead":01})",
      R"({"lead":-01})",
      R"({"minus":-})",
      R"({"minus":-a})",
      R"({"esc":"\"\\\/\b\f\n\r\t","u":"\u0041","bad":"\x"})",
      R"({"esc":"\"\\\/\b\f\n\r\t"})",
      "{\"del\":\"\x7f\",\"tab in string\":\"a\tb\"}",
      std::string("{\"nul\":\"a\0b\"}", 13),
      "{\"utf8\":\"caf\xc3\xa9\"}",
      "\xef\xbb\xbf{\"bom\":1}",
      R"({"t":true,"f":false,"n":null,"tx":truex})",
      R"({"t":tru})",
      R"({"nested":{"a":[{},[],[{}],{"b":[[]]}],"c":{"d":{"e":"f"}}},"after":[1,"2",true,null]})",
      R"({"a":[1,2,]})",
      R"({"a":[1 2]})",
      R"({"a":{"b":1,}})",
      R"({"a":{"b" 1}})",
      R"({"a":{1:2}})",
      R"({"a":"unterminated)",
      R"({"a":1)",
      "{\"a\":1}\n\t\r ",
      "{\"a\":1}x",
      "{\r\n\t\"ws\" \t:\n[ ]\r}",
  };
  std::vector<JsonLimits> limits(4);
  limits[1].max_values = 3;
  limits[2].max_string_bytes = 2;
  limits[3].max_bytes = 20;
  for (const std::string& t : texts) {
    for (const JsonLimits& lim : limits) {
      INFO(t << " max_values " << lim.max_values << " max_string_bytes " << lim.max_string_bytes << " max_bytes "
             << lim.max_bytes);
      BoundedJson tree = parse_json_within(t, lim);
      BoundedMembers members = parse_json_members_within(t, lim);
      if (tree.violation == JsonViolation::none) {
        // Both read the plain subset with their own parser: its tree must be
        // nlohmann's, types included.
        nlohmann::json reference = nlohmann::json::parse(t, nullptr, false);
        CHECK(tree.value == reference);
        CHECK(same_types(tree.value, reference));
      }
      CHECK(members.violation == tree.violation);
      CHECK(members.error == tree.error);
      CHECK(members.object == (tree.violation == JsonViolation::none && tree.value.is_object()));
      if (!members.object) {
        CHECK(members.value.members.empty());
        continue;
      }
      nlohmann::json rebuilt = nlohmann::json::object();
      for (auto& [k, v] : members.value.members) {
        CHECK(rebuilt.find(k) == rebuilt.end());  // each key once
        rebuilt[k] = v;
      }
      CHECK(rebuilt == tree.value);
      CHECK(same_types(rebuilt, tree.value));  // 5 as unsigned and as integer compare equal
    }
  }
}

TEST_CASE("json_nesting_within ignores brackets in strings and escaped quotes", "[json_limits]") {
  CHECK(json_nesting_within(R"(["[[[[[["])", 1));
  CHECK(json_nesting_within(R"(["\"[[[["])", 1));
  CHECK_FALSE(json_nesting_within(R"(["\\",[[]]])", 2));  // the string ends after the escaped backslash
  CHECK(json_nesting_within(std::string(1000000, '"'), 1));
}

TEST_CASE("parse_json_shallow discards text nested past its depth, and text that is not JSON",
          "[json_limits]") {
  CHECK(parse_json_shallow(R"({"a":[1]})", 2) == nlohmann::json({{"a", {1}}}));
  CHECK(parse_json_shallow(R"({"a":[[1]]})", 2).is_discarded());
  CHECK(parse_json_shallow(R"({"a":)", 8).is_discarded());
  CHECK(parse_json_shallow("[1,2]", 1) == nlohmann::json({1, 2}));
  CHECK(parse_json_shallow("[[1]]", 1).is_discarded());
}

TEST_CASE("json_depth_within measures a built tree without recursion", "[json_limits]") {
  nlohmann::json deep = nlohmann::json::array();
  nlohmann::json* inner = &deep;
  for (int i = 1; i < 200000; ++i) {
    inner->push_back(nlohmann::json::array());
    inner = &(*inner)[0];
  }
  CHECK_FALSE(json_depth_within(deep, 128));
  CHECK(json_depth_within(nlohmann::json{{"a", {1, 2}}}, 2));
  CHECK_FALSE(json_depth_within(nlohmann::json::parse(R"({"a":{"b":[1]}})"), 2));
  CHECK(json_depth_within(nlohmann::json(5), 0));
}

TEST_CASE("a routes file nested 100,000 deep is a one-line error, not a crash", "[json_limits][routes]") {
  std::string deep = R"({"routes":[)" + std::string(100000, '[') + std::string(100000, ']') + "]}";
  auto t = RouteTable::load_json(deep);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().find("nests more than 64") != std::string::npos);
  CHECK(t.error().find('\n') == std::string::npos);
}

TEST_CASE("a routes or config file over its size limit is refused with one line", "[json_limits][routes]") {
  test::TempDir dir;
  std::string routes = dir.path + "/routes.json";
  {
    std::ofstream out(routes);
    out << R"({"routes":[],"pad":")" << std::string(k_max_routes_bytes, 'x') << "\"}";
  }
  auto t = RouteTable::load_file(routes);
  REQUIRE_FALSE(t.ok());
  CHECK(t.error().find("refused") != std::string::npos);
  std::string conf = dir.path + "/asyncops.conf";
  {
    std::ofstream out(conf);
    out << "[daemon]\n# " << std::string(2 << 20, 'x') << "\n";
  }
  auto c = load_config(conf, true);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().find("more than the limit") != std::string::npos);
}
