#include <catch2/catch.hpp>

#include <thread>

#include "daemon/gateway.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

struct Api {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  ChangeHub hub;
  std::vector<Command> dispatched;
  std::mutex m;
  GroupCommitter gc{std::move(StoreWriter::open(path, SyncMode::normal).value()),
                    {[this](const std::vector<Change>& c) { hub.publish(c); },
                     [this](std::vector<Command> c) {
                       std::lock_guard<std::mutex> lock(m);
                       for (auto& x : c) dispatched.push_back(x);
                     }}};
  ReaderPool readers{path};
  Gateway gw{RouteTable::load_json(RouteTable::default_json()).value(), gc, readers, hub, options()};

  static GatewayOptions options() {
    GatewayOptions o;
    o.max_body_bytes = 1024;
    o.max_wait_seconds = 2;
    return o;
  }

  Api() { gc.start(); }

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
    ApiRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    r.headers = std::move(headers);
    r.headers["host"] = "localhost:8080";
    r.query = std::move(query);
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
