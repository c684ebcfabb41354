// Request framing (RFC 9112) through the same parser a connection uses
// (parse_http_request), then the Gateway: the seam without sockets.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>

#include "daemon/gateway.h"
#include "daemon/http_api.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

struct Front : StoreWithHub {
  GatewayServices services() {
    GatewayServices s;
    s.metrics = [] { return std::string(500, '#') + "\n"; };
    return s;
  }
  Gateway gw{RouteTable::load_json(RouteTable::default_json()).value(), gc, readers, hub, GatewayOptions{},
             services()};
  HttpLimits limits;
  Front() {
    limits.max_body_bytes = 1024;
    gc.start();
  }
  ~Front() {
    hub.shutdown();
    gc.stop();
  }
  // Parses raw bytes; a parse error is the reply, else the gateway answers.
  ApiReply send(const std::string& raw) {
    auto p = parse_http_request(raw, limits);
    REQUIRE_FALSE(p.need_more);
    if (p.error) return *p.error;
    REQUIRE(p.request);
    return gw.handle(*p.request);
  }
};

std::string post(const std::string& content_length_lines, const std::string& body = "{}") {
  return "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + content_length_lines +
         "\r\n" + body;
}

void expect_problem(const ApiReply& r, int status, const std::string& code = "") {
  CHECK(r.status == status);
  CHECK(r.content_type == "application/problem+json");
  auto j = json::parse(r.body, nullptr, false);
  REQUIRE(j.is_object());
  CHECK(j["status"] == status);
  if (!code.empty()) CHECK(j["code"] == code);
}

}  // namespace

TEST_CASE("Content-Length must be one run of digits, given once", "[http]") {
  Front f;
  for (const char* bad : {"2, 40", "1e3", "+2", "-5", "2 2", "0x2", "2,2", "", "99999999999999999999"}) {
    INFO("Content-Length: " << bad);
    // Answered from the head alone (no body is awaited): a fast 400.
    auto p = parse_http_request(post(std::string("Content-Length: ") + bad + "\r\n", ""), f.limits);
    CHECK_FALSE(p.need_more);
    REQUIRE(p.error);
    expect_problem(*p.error, 400, "invalid_content_length");
  }
  // Repeated, even with the same value.
  expect_problem(f.send(post("Content-Length: 2\r\nContent-Length: 2\r\n")), 400, "invalid_content_length");
  expect_problem(f.send(post("Content-Length: 2\r\nContent-Length: 40\r\n")), 400, "invalid_content_length");
  // Whitespace around a field value is not part of it (RFC 9112 5): " 2"
  // after the colon is the number 2, read as exactly two bytes.
  auto padded = parse_http_request(post("Content-Length:  2 \r\n", "{}"), f.limits);
  REQUIRE(padded.request);
  CHECK(padded.request->body == "{}");
  CHECK(f.send(post("Content-Length: 2\r\n")).status == 422);  // framed right; {} then fails validation
}

TEST_CASE("Transfer-Encoding with Content-Length, or not ending in chunked, is 400", "[http]") {
  Front f;
  expect_problem(f.send(post("Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", "2\r\n{}\r\n0\r\n\r\n")), 400);
  expect_problem(f.send(post("Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n")), 400);
  expect_problem(f.send(post("Transfer-Encoding: gzip\r\n", "{}")), 400, "invalid_transfer_encoding");
  auto chunked = f.send(post("Transfer-Encoding: chunked\r\n", "2\r\n{}\r\n0\r\n\r\n"));
  CHECK(chunked.status == 422);  // framed right; the empty object fails validation
}

TEST_CASE("one header over the limit is 431, a long target 414, a long body 413", "[http]") {
  Front f;
  // 9,000 bytes in one field: within what the parser buffers, over the
  // limit on fields, which the gateway answers.
  std::string big = "GET /operations HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n";
  expect_problem(f.send(big), 431, "headers_too_large");
  // Far beyond what the parser buffers: answered while parsing.
  std::string huge = "GET /operations HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  expect_problem(f.send(huge), 431, "headers_too_large");
  std::string target = "GET /operations/" + std::string(3000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  expect_problem(f.send(target), 414, "uri_too_long");
  std::string huge_target = "GET /operations/" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n";
  expect_problem(f.send(huge_target), 414, "uri_too_long");
  // The declared length is over the limit: 413 before any body byte.
  auto p = parse_http_request(post("Content-Length: 5000\r\n", ""), f.limits);
  REQUIRE(p.error);
  expect_problem(*p.error, 413, "body_too_large");
}

TEST_CASE("methods the API does not serve get 405 with Allow", "[http]") {
  Front f;
  auto trace = f.send("TRACE /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_problem(trace, 405, "method_not_allowed");
  CHECK(trace.header("Allow").find("GET") != std::string::npos);
  CHECK(trace.header("Allow").find("TRACE") == std::string::npos);
  auto anywhere = f.send("TRACE /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_problem(anywhere, 405);
  CHECK(!anywhere.header("Allow").empty());
  auto connect = f.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  expect_problem(connect, 405);
  CHECK(!connect.header("Allow").empty());
}

TEST_CASE("Range is ignored: /metrics answers 200 with the whole body", "[http]") {
  Front f;
  auto whole = f.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  auto ranged = f.send("GET /metrics HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\n\r\n");
  CHECK(ranged.status == 200);
  CHECK(ranged.body.size() == whole.body.size());
  CHECK(ranged.body.size() > 10);
  CHECK(ranged.header("Content-Range").empty());
}

TEST_CASE("an HTTP/1.1 request needs exactly one Host: an incomplete one needs more bytes", "[http]") {
  Front f;
  expect_problem(f.send("GET /healthz HTTP/1.1\r\n\r\n"), 400, "invalid_host");
  expect_problem(f.send("GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400, "invalid_host");
  CHECK(f.send("GET /healthz HTTP/1.0\r\n\r\n").status == 200);
  CHECK(parse_http_request("GET /healthz HTTP/1.1\r\nHost:", f.limits).need_more);
  CHECK(parse_http_request(post("Content-Length: 10\r\n", "{}"), f.limits).need_more);
  expect_problem(f.send("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), 400);
  expect_problem(f.send("G@T /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
}

TEST_CASE("the target's path and query are percent-decoded, the first value winning", "[http]") {
  Front f;
  auto p = parse_http_request("GET /operations?state=pending&limit=2&limit=3&name=a%20b+c HTTP/1.1\r\nHost: x\r\n"
                              "X-Mixed-Case: V\r\n\r\n", f.limits);
  REQUIRE(p.request);
  CHECK(p.request->path == "/operations");
  CHECK(p.request->query["state"] == "pending");
  CHECK(p.request->query["limit"] == "2");
  CHECK(p.request->query["name"] == "a b c");
  CHECK(p.request->header("x-mixed-case") == "V");
  CHECK(p.keep_alive);
}

TEST_CASE("an accept answers from its commit's completion, not from a blocked thread", "[http][gateway]") {
  Front f;
  auto p = parse_http_request(post("Content-Length: 34\r\n", R"({"email":"a@b.example","name":"A"})"), f.limits);
  REQUIRE(p.request);
  ApiReply pending = f.gw.begin(*p.request);
  REQUIRE(pending.later);
  std::promise<Finish> got;
  pending.later([&got](Finish fin) { got.set_value(std::move(fin)); });
  auto future = got.get_future();
  REQUIRE(future.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  ApiReply done = future.get()();
  CHECK(done.status == 202);
  CHECK(!done.header("Location").empty());
  // A wait is handed back as a subscription plus a deadline, never run here.
  std::string id = json::parse(done.body)["id"];
  auto wait = parse_http_request("GET /operations/" + id + "?wait=5 HTTP/1.1\r\nHost: x\r\n\r\n", f.limits);
  REQUIRE(wait.request);
  ApiReply waiting = f.gw.begin(*wait.request);
  REQUIRE(waiting.wait);
  CHECK(waiting.wait->op_id == id);
  CHECK_FALSE(waiting.wait->ready());
  CHECK(waiting.wait->finish().status == 200);
}

// The server renders a complete reply itself (render_http_response), one
// buffer; before, Beast's response and serializer did. Byte for byte the
// same, for the replies the Gateway makes and for the edge cases Beast's
// set() and keep_alive() decide: replaced headers, a reply's own
// Connection tokens, HEAD, the statuses without a body.
TEST_CASE("a reply renders byte for byte as Beast's serializer wrote it", "[http][render]") {
  std::vector<ApiReply> replies;
  ApiReply accepted;
  accepted.status = 202;
  accepted.body = R"({"id":"0190","state":"pending"})";
  accepted.headers = {{"X-Operation", "/operations/0190"}, {"Location", "/operations/0190"},
                      {"Operation-Location", "/operations/0190"}, {"Retry-After", "1"},
                      {"X-Resource", "/users/0190"}};
  replies.push_back(accepted);
  ApiReply problem;
  problem.status = 404;
  problem.content_type = "application/problem+json";
  problem.body = R"({"title":"Not Found","status":404})";
  replies.push_back(problem);
  ApiReply empty;
  empty.status = 204;
  empty.body = "";
  empty.headers = {{"Content-Type", "text/plain"}, {"Content-Length", "0"}};
  replies.push_back(empty);
  ApiReply not_modified;
  not_modified.status = 304;
  not_modified.headers = {{"ETag", "\"v1\""}};
  replies.push_back(not_modified);
  ApiReply upgrade;
  upgrade.status = 426;
  upgrade.content_type = "application/problem+json";
  upgrade.body = "{}";
  upgrade.headers = {{"Upgrade", "websocket"}, {"Connection", "Upgrade"}, {"Vary", "Origin"}};
  replies.push_back(upgrade);
  ApiReply replaced;
  replaced.status = 200;
  replaced.content_type = "text/html; charset=utf-8";
  replaced.body = std::string(3000, 'x');
  replaced.headers = {{"cache-control", "max-age=60"}, {"Content-Type", "text/plain"},
                      {"content-length", "7"}, {"Allow", "GET, HEAD"}, {"X-Spaces", "  padded \t"}};
  replies.push_back(replaced);
  ApiReply no_type;
  no_type.status = 200;
  no_type.content_type = "";
  no_type.body = "plain";
  no_type.headers = {{"Content-Type", "text/csv"}};
  replies.push_back(no_type);
  for (const char* tokens : {"close", "keep-alive", "Upgrade, close", "keep-alive, Upgrade", ", ,close ,", ""}) {
    ApiReply r;
    r.status = 405;
    r.body = "{}";
    r.headers = {{"Connection", tokens}, {"Allow", "GET"}};
    replies.push_back(r);
  }
  for (int status : {200, 201, 400, 401, 413, 429, 431, 500, 503}) {
    ApiReply r;
    r.status = status;
    r.body = "{\"status\":" + std::to_string(status) + "}";
    replies.push_back(r);
  }
  for (const ApiReply& reply : replies) {
    for (bool head : {false, true}) {
      for (bool keep_alive : {true, false}) {
        INFO("status " << reply.status << (head ? " HEAD" : "") << (keep_alive ? " keep-alive" : " close"));
        CHECK(render_http_response(reply, head, keep_alive) ==
              render_http_response_with_beast(reply, head, keep_alive));
      }
    }
  }
}

TEST_CASE("a reply header with CR or LF in its name or value is left out", "[http][render]") {
  ApiReply r;
  r.status = 202;
  r.body = "{}";
  r.headers = {{"X-Good", "1"}, {"X-Bad", "a\r\nSet-Cookie: x=1"}, {"X-Evil\r\nInjected", "2"}, {"X-Lf", "b\nc"}};
  std::string out = render_http_response(r, false, true);
  CHECK(out ==
        "HTTP/1.1 202 Accepted\r\nX-Good: 1\r\nCache-Control: no-store\r\nContent-Type: application/json\r\n"
        "Content-Length: 2\r\n\r\n{}");
}
