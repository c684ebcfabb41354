#include <catch2/catch.hpp>

#include <thread>

#include "daemon/gateway.h"
#include "api_request.h"
#include "json_types.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

struct Api {
  std::string routes = RouteTable::default_json();
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  ChangeHub hub;
  std::vector<Command> dispatched;
  std::mutex m;
  GroupCommitter gc{std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()),
                    {[this](const std::vector<Change>& c) { hub.publish(c); },
                     [this](std::vector<Command> c) {
                       std::lock_guard<std::mutex> lock(m);
                       for (auto& x : c) dispatched.push_back(x);
                     }}};
  ReaderPool readers{path};
  Gateway gw{RouteTable::load_json(routes).value(), gc, readers, hub, options()};

  static GatewayOptions options() {
    GatewayOptions o;
    o.max_body_bytes = 1024;
    o.max_wait_seconds = 2;
    return o;
  }

  Api() { gc.start(); }
  explicit Api(std::string route_table) : routes(std::move(route_table)) { gc.start(); }

  // The dispatch hook runs just after the 202's commit is answered.
  std::vector<Command> wait_dispatched(size_t n) {
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
         std::chrono::steady_clock::now() < deadline;) {
      {
        std::lock_guard<std::mutex> lock(m);
        if (dispatched.size() >= n) return dispatched;
      }
      std::this_thread::yield();
    }
    std::lock_guard<std::mutex> lock(m);
    return dispatched;
  }
  ~Api() {
    hub.shutdown();
    gc.stop();
  }

  ApiReply call(const std::string& method, const std::string& path, const std::string& body = "",
                std::map<std::string, std::string> headers = {{"content-type", "application/json"}},
                std::map<std::string, std::string> query = {}) {
    ApiRequest r = json_request(method, path, body, std::move(query));
    r.headers = std::move(headers);
    r.headers["host"] = "localhost:8080";
    return gw.handle(r);
  }
};

json body(const ApiReply& r) { return json::parse(r.body); }

void expect_problem(const ApiReply& r, int status, const std::string& code) {
  CHECK(r.status == status);
  CHECK(r.content_type == "application/problem+json");
  auto j = body(r);
  CHECK(j["status"] == status);
  CHECK(j["type"] == "about:blank");
  CHECK(j["code"] == code);
}

}  // namespace

TEST_CASE("a command is answered 202 with the operation and its headers", "[gateway]") {
  Api api;
  auto r = api.call("POST", "/users", R"({"email":"a@example.com","name":"A"})");
  REQUIRE(r.status == 202);
  auto op = body(r);
  CHECK(op["state"] == "pending");
  CHECK(op["name"] == "create_user");
  CHECK(op["origin"] == "POST /users");
  std::string id = op["id"];
  CHECK(r.header("X-Operation") == "/operations/" + id);
  CHECK(r.header("X-Resource") == op["resource"]);
  CHECK(r.header("X-Resource").rfind("/users/", 0) == 0);
  CHECK(r.header("Location") == "http://localhost:8080/operations/" + id);
  CHECK(r.header("Operation-Location") == r.header("Location"));
  CHECK(r.header("Retry-After") == "1");
  auto sent = api.wait_dispatched(1);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].id == id);
  CHECK(sent[0].params["id"] == r.header("X-Resource").substr(7));
}

TEST_CASE("a delete names no resource", "[gateway]") {
  Api api;
  auto r = api.call("DELETE", "/users/abc", "", {});
  REQUIRE(r.status == 202);
  CHECK(r.header("X-Resource").empty());
  auto sent = api.wait_dispatched(1);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].params["id"] == "abc");
}

TEST_CASE("bad input gets the right problem and leaves nothing behind", "[gateway]") {
  Api api;
  expect_problem(api.call("POST", "/users", "{nope"), 400, "invalid_json");
  expect_problem(api.call("POST", "/users", std::string(70, '[') + std::string(70, ']')), 400, "invalid_json");
  expect_problem(api.call("POST", "/users", R"({"email":1})"), 422, "validation_failed");
  expect_problem(api.call("POST", "/users", "hello", {{"content-type", "text/plain"}}), 415,
                 "unsupported_media_type");
  expect_problem(api.call("POST", "/users", std::string(2000, ' ') + "{}"), 413, "body_too_large");
  expect_problem(api.call("GET", "/nowhere"), 404, "not_found");
  auto r = api.call("PATCH", "/users", "{}");
  expect_problem(r, 405, "method_not_allowed");
  CHECK(r.header("Allow") == "GET, HEAD, POST");
  expect_problem(api.call("GET", "/operations", "", {}, {{"limit", "0"}}), 400, "invalid_query");
  expect_problem(api.call("GET", "/operations", "", {}, {{"cursor", "garbage!"}}), 400, "invalid_query");
  expect_problem(api.call("GET", "/operations", "", {}, {{"state", "done"}}), 400, "invalid_query");
  CHECK(body(api.call("GET", "/operations"))["items"].empty());
  CHECK(api.wait_dispatched(0).empty());
}

TEST_CASE("a body is stored as nlohmann reads it, in the plain subset or out of it", "[gateway]") {
  // Most bodies are read by the plain-subset parser, the rest by nlohmann's:
  // the command carries the same tree either way, types included.
  Api api(R"({"routes": [{"method": "POST", "path": "/things", "command": "make_thing", "service": "users",
                          "resource": "/things/{id}", "additional_fields": true}]})");
  const std::vector<std::string> bodies = {
      R"({"a":1,"b":-2,"c":999999999999999999,"d":"x\"y\\z\n\t","e":[1,[2,{"f":null}]],"g":{"h":true,"i":false}})",
      R"({"dup":1,"x":[],"dup":{"k":[{}]}})",
      "{\r\n \"spaced\" : [ 1 , 2 ] ,\t\"o\" : { } }",
      R"({"big":18446744073709551615,"neg":-9223372036854775808,"float":1.5,"exp":1e3,"neg0":-0})",
      R"({"u":"\u00e9","lead":"x"})",
      "{\"utf8\":\"caf\xc3\xa9\"}",
      // At the depth limit (64 levels), and near the values limit (256):
      // one pass shows them within, so the plain parser reads them.
      "{\"deep\":" + std::string(63, '[') + std::string(63, ']') + "}",
      "{\"many\":[" + [] { std::string s = "0"; for (int i = 1; i < 250; ++i) s += ",0"; return s; }() + "]}",
  };
  for (size_t i = 0; i < bodies.size(); ++i) {
    INFO(bodies[i].substr(0, 200));
    auto r = api.call("POST", "/things", bodies[i]);
    REQUIRE(r.status == 202);
    auto sent = api.wait_dispatched(i + 1);
    REQUIRE(sent.size() == i + 1);
    json expected = json::parse(bodies[i]);
    CHECK(sent[i].payload == expected);
    CHECK(asyncops::test::same_types(sent[i].payload, expected));
  }
}

TEST_CASE("422 lists each field error with a JSON pointer", "[gateway]") {
  Api api;
  auto r = api.call("POST", "/users", R"({"name":""})");
  REQUIRE(r.status == 422);
  auto errors = body(r)["errors"];
  REQUIRE(errors.size() == 2);
  CHECK(errors[0]["pointer"] == "/email");
  CHECK(errors[1]["pointer"] == "/name");
}

TEST_CASE("an unknown operation is 404, never pending", "[gateway]") {
  Api api;
  expect_problem(api.call("GET", "/operations/" + new_uuid_v7()), 404, "operation_not_found");
}

TEST_CASE("operation lists page newest first with an opaque cursor", "[gateway]") {
  Api api;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(body(api.call("POST", "/users", R"({"email":"a@example.com","name":"A"})"))["id"]);
  }
  auto p1 = body(api.call("GET", "/operations", "", {}, {{"limit", "2"}}));
  REQUIRE(p1["items"].size() == 2);
  CHECK(p1["items"][0]["id"] == ids[4]);
  REQUIRE(p1["next"].is_string());
  api.call("POST", "/users", R"({"email":"b@example.com","name":"B"})");
  auto p2 = body(api.call("GET", "/operations", "", {}, {{"limit", "2"}, {"cursor", p1["next"]}}));
  CHECK(p2["items"][0]["id"] == ids[2]);
  auto p3 = body(api.call("GET", "/operations", "", {}, {{"limit", "2"}, {"cursor", p2["next"]}}));
  REQUIRE(p3["items"].size() == 1);
  CHECK(p3["items"][0]["id"] == ids[0]);
  CHECK(p3["next"].is_null());
}

TEST_CASE("wait returns early on a terminal state and at the timeout otherwise", "[gateway]") {
  Api api;
  auto a = body(api.call("POST", "/users", R"({"email":"a@example.com","name":"A"})"));
  OperationRecord rec;
  rec.id = a["id"];
  rec.resource = a["resource"];
  std::thread finisher([&] {
    Event e = event_for(rec, OpState::completed);
    e.data = {{"id", "x"}};
    api.gc.submit_event(e);
  });
  auto start = std::chrono::steady_clock::now();
  auto r = api.call("GET", "/operations/" + rec.id, "", {}, {{"wait", "30"}});
  finisher.join();
  CHECK(body(r)["state"] == "completed");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  // The read model is readable once the operation shows completed.
  CHECK(api.call("GET", rec.resource).status == 200);

  auto b = body(api.call("POST", "/users", R"({"email":"b@example.com","name":"B"})"));
  start = std::chrono::steady_clock::now();
  r = api.call("GET", "/operations/" + b["id"].get<std::string>(), "", {}, {{"wait", "1"}});
  CHECK(body(r)["state"] == "pending");
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(900));
}

TEST_CASE("Prefer parsing follows RFC 7240", "[gateway]") {
  auto p = parse_prefer("respond-async, wait=10");
  CHECK(p.count("respond-async"));
  CHECK(p["wait"] == "10");
  p = parse_prefer(" WAIT = \"5\" ; x=y ,handling=lenient");
  CHECK(p["wait"] == "5");
  CHECK(p["handling"] == "lenient");
  CHECK(parse_prefer("").empty());
}

TEST_CASE("GET /stats gives counts by state and rates over the last window", "[gateway][stats]") {
  Api api;
  for (int i = 0; i < 2; ++i) api.call("POST", "/users", R"({"email":"a@example.com","name":"A"})");
  auto r = api.call("GET", "/stats", "", {});
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/json");
  auto s = body(r);
  CHECK(s["total"] == 2);
  for (const char* st : {"pending", "processing", "completed", "rejected", "failed", "canceled"}) {
    CHECK(s["counts"].contains(st));
  }
  CHECK(s["counts"]["pending"] == 2);
  CHECK(s["backlog"] == 2);
  CHECK(s["by_command"]["create_user"]["total"] == 2);
  CHECK(s["rates"]["window_s"] == 10);
  CHECK(s["rates"]["accepted"].get<double>() == Approx(0.2));
  for (const char* k : {"completed", "rejected", "failed"}) CHECK(s["rates"][k] == 0);
  // Another window is computed, not cached; a bad one is a 400 problem.
  auto w = body(api.call("GET", "/stats", "", {}, {{"window", "60"}}));
  CHECK(w["rates"]["window_s"] == 60);
  expect_problem(api.call("GET", "/stats", "", {}, {{"window", "0"}}), 400, "invalid_query");
  expect_problem(api.call("POST", "/stats", "{}"), 405, "method_not_allowed");
}

TEST_CASE("retry submits a finished operation's request again, linked both ways", "[gateway][retry]") {
  Api api;
  auto first = body(api.call("POST", "/users", R"({"email":"r@example.com","name":"R"})"));
  std::string id = first["id"];
  expect_problem(api.call("POST", "/operations/" + id + "/retry"), 409, "operation_unfinished");
  Event done;
  done.request_id = id;
  done.state = OpState::completed;
  done.code = "success";
  done.type = "user_created";
  done.resource = first["resource"].get<std::string>();
  done.worker = "users-host-1";
  done.attempt = 1;
  REQUIRE(api.gc.run([&](StoreWriter& w, std::vector<Change>& changes) {
    Change c;
    if (w.apply_event(done, now_ms(), &c) == StoreWriter::Applied::changed) changes.push_back(c);
  }));

  auto r = api.call("POST", "/operations/" + id + "/retry", "", {});
  REQUIRE(r.status == 202);
  auto again = body(r);
  std::string retry_id = again["id"];
  CHECK(retry_id != id);
  CHECK(again["retry_of"] == id);
  CHECK(again["name"] == "create_user");
  CHECK(again["origin"] == "POST /users");
  CHECK(again["state"] == "pending");
  CHECK(again["resource"] != first["resource"]);  // a create makes a new resource again
  CHECK(r.header("Location").find("/operations/" + retry_id) != std::string::npos);

  // GET shows the original request, its worker and its retries; the retry
  // shows what it retries.
  auto original = body(api.call("GET", "/operations/" + id, "", {}));
  CHECK(original["request"]["method"] == "POST");
  CHECK(original["request"]["path"] == "/users");
  CHECK(original["request"]["body"] == json({{"email", "r@example.com"}, {"name", "R"}}));
  CHECK(original["worker"] == "users-host-1");
  CHECK(original["service"] == "users");
  CHECK(original["owner"] == "");
  CHECK(original["retry_of"].is_null());
  CHECK(original["retries"] == json::array({retry_id}));
  auto second = body(api.call("GET", "/operations/" + retry_id, "", {}));
  CHECK(second["retry_of"] == id);
  CHECK(second["worker"].is_null());
  CHECK(second["retries"].empty());
  // Lists carry retry_of too.
  auto page = body(api.call("GET", "/operations", "", {}, {{"limit", "1"}}));
  CHECK(page["items"][0]["retry_of"] == id);

  expect_problem(api.call("POST", "/operations/" + new_uuid_v7() + "/retry"), 404, "operation_not_found");
  expect_problem(api.call("GET", "/operations/" + id + "/retry"), 405, "method_not_allowed");
}

TEST_CASE("operation lists filter by until, code, owner and resource", "[gateway][filters]") {
  Api api;
  std::vector<json> ops;
  for (const char* email : {"f1@example.com", "f2@example.com", "f3@example.com"}) {
    ops.push_back(body(api.call("POST", "/users", std::string(R"({"name":"F","email":")") + email + "\"}")));
  }
  Event rejected;
  rejected.request_id = ops[1]["id"].get<std::string>();
  rejected.state = OpState::rejected;
  rejected.code = "email_in_use";
  rejected.type = "create_user_rejected";
  rejected.resource = ops[1]["resource"].get<std::string>();
  REQUIRE(api.gc.run([&](StoreWriter& w, std::vector<Change>& changes) {
    Change c;
    if (w.apply_event(rejected, now_ms(), &c) == StoreWriter::Applied::changed) changes.push_back(c);
  }));
  auto list = [&](std::map<std::string, std::string> q) { return body(api.call("GET", "/operations", "", {}, q))["items"]; };
  auto by_code = list({{"code", "email_in_use"}});
  REQUIRE(by_code.size() == 1);
  CHECK(by_code[0]["id"] == ops[1]["id"]);
  auto by_resource = list({{"resource", ops[2]["resource"]}});
  REQUIRE(by_resource.size() == 1);
  CHECK(by_resource[0]["id"] == ops[2]["id"]);
  CHECK(list({{"resource", "/users/"}}).size() == 3);
  CHECK(list({{"resource", "/users"}}).empty());  // exact, not a prefix, without the slash
  CHECK(list({{"until", "2000-01-01T00:00:00Z"}}).empty());
  CHECK(list({{"until", "2999-01-01T00:00:00Z"}, {"since", "2000-01-01T00:00:00Z"}}).size() == 3);
  CHECK(list({{"owner", "bob"}}).empty());  // the local operator may name any owner
  CHECK(list({{"owner", ""}}).size() == 3);
  // Filters and the cursor combine: the second page keeps the filter.
  auto p1 = body(api.call("GET", "/operations", "", {}, {{"resource", "/users/"}, {"limit", "2"}}));
  REQUIRE(p1["next"].is_string());
  auto p2 = body(api.call("GET", "/operations", "", {}, {{"resource", "/users/"}, {"limit", "2"}, {"cursor", p1["next"]}}));
  REQUIRE(p2["items"].size() == 1);
  CHECK(p2["items"][0]["id"] == ops[0]["id"]);
  expect_problem(api.call("GET", "/operations", "", {}, {{"until", "yesterday"}}), 400, "invalid_query");
  expect_problem(api.call("GET", "/operations", "", {}, {{"resource", "users"}}), 400, "invalid_query");
}
