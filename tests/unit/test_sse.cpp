// cli/sse.h: SseParser against the WHATWG text/event-stream rules.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "cli/sse.h"

using namespace asyncops;

namespace {

// Feeds text to a fresh parser (or to p), all at once or byte by byte, and
// returns the events it dispatched.
std::vector<SseEvent> parse(SseParser& p, const std::string& text, bool byte_by_byte = false) {
  std::vector<SseEvent> got;
  auto on_event = [&](const SseEvent& e) { got.push_back(e); };
  if (byte_by_byte) {
    for (char c : text) p.feed(&c, 1, on_event);
  } else {
    p.feed(text.data(), text.size(), on_event);
  }
  return got;
}

std::vector<SseEvent> parse(const std::string& text, bool byte_by_byte = false) {
  SseParser p;
  return parse(p, text, byte_by_byte);
}

// The data of each event parsed from text.
std::vector<std::string> data_of(const std::string& text, bool byte_by_byte = false) {
  std::vector<std::string> out;
  for (const SseEvent& e : parse(text, byte_by_byte)) out.push_back(e.data);
  return out;
}

using Data = std::vector<std::string>;

}  // namespace

TEST_CASE("a blank line ends an event: its id, event and data are kept", "[sse]") {
  auto got = parse("id: 7\nevent: completed\ndata: {\"a\":1}\n\n");
  REQUIRE(got.size() == 1);
  CHECK(got[0].id == "7");
  CHECK(got[0].event == "completed");
  CHECK(got[0].data == "{\"a\":1}");
}

TEST_CASE("an event without an event field is a message", "[sse]") {
  auto got = parse("data: x\n\n");
  REQUIRE(got.size() == 1);
  CHECK(got[0].event == "message");
}

TEST_CASE("an event is not dispatched before its blank line", "[sse]") {
  SseParser p;
  CHECK(parse(p, "data: x\n").empty());
  CHECK(parse(p, "\n").size() == 1);
}

TEST_CASE("CR, LF and CRLF all end lines, also when CRLF is split across reads", "[sse]") {
  for (const std::string text : {"data: a\n\ndata: b\n\n", "data: a\r\rdata: b\r\r", "data: a\r\n\r\ndata: b\r\n\r\n",
                                 "data: a\r\n\ndata: b\r\r\n"}) {
    for (bool byte_by_byte : {false, true}) CHECK(data_of(text, byte_by_byte) == Data{"a", "b"});
  }
}

TEST_CASE("data lines join with a newline, with no newline after the last", "[sse]") {
  CHECK(data_of("data: one\ndata: two\ndata:\ndata: four\n\n") == Data{"one\ntwo\n\nfour"});
}

TEST_CASE("only one leading space after the colon is dropped", "[sse]") {
  CHECK(data_of("data:  two spaces\n\ndata:none\n\n") == Data{" two spaces", "none"});
}

TEST_CASE("comment lines are skipped, also as heartbeats between events", "[sse]") {
  CHECK(data_of(": heartbeat\n\n:\ndata: x\n: inside\n\n") == Data{"x"});
}

TEST_CASE("a field without a colon is a name with an empty value", "[sse]") {
  CHECK(data_of("data\ndata\n\n") == Data{"\n"});
}

TEST_CASE("an event without data is not dispatched, and its fields do not leak into the next", "[sse]") {
  auto got = parse("id: 3\nevent: x\n\ndata: y\n\n");
  REQUIRE(got.size() == 1);
  CHECK(got[0].event == "message");
  CHECK(got[0].data == "y");
}

TEST_CASE("unknown fields are ignored", "[sse]") {
  CHECK(data_of("foo: bar\ndata: x\n\n") == Data{"x"});
}

TEST_CASE("an id containing NUL is ignored: the last id seen is kept", "[sse]") {
  SseParser p;
  static const char k_text[] = "id: 5\ndata: a\n\nid: 6\0x\ndata: b\n\n";
  auto got = parse(p, std::string(k_text, sizeof k_text - 1));  // the NUL inside, not the one at the end
  REQUIRE(got.size() == 2);
  CHECK(got[0].id == "5");
  CHECK(got[1].id.find('\0') == std::string::npos);
  CHECK(p.last_id() == "5");
  parse(p, "id: 9\ndata: c\n\n");
  CHECK(p.last_id() == "9");
}

TEST_CASE("retry takes digits only: anything else leaves it as it was", "[sse]") {
  SseParser p;
  CHECK(p.retry_ms() == -1);
  parse(p, "retry: 2000\n\n");
  CHECK(p.retry_ms() == 2000);
  for (const char* bad : {"retry: 2s\n", "retry: -5\n", "retry:\n", "retry: 1.5\n", "retry: 9999999999\n"}) {
    parse(p, bad);
    CHECK(p.retry_ms() == 2000);
  }
  parse(p, "retry: 0\n");
  CHECK(p.retry_ms() == 0);
}

TEST_CASE("a byte order mark at the start of the stream is skipped", "[sse]") {
  for (bool byte_by_byte : {false, true}) CHECK(data_of("\xEF\xBB\xBF" "data: x\n\n", byte_by_byte) == Data{"x"});
}

TEST_CASE("a byte order mark later in the stream is data, not skipped", "[sse]") {
  CHECK(data_of("data: x\n\ndata: \xEF\xBB\xBFy\n\n") == Data{"x", "\xEF\xBB\xBFy"});
}
