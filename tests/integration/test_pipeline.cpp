// The core pipeline through real processes: HTTP -> asyncopsd -> ZeroMQ ->
// asyncops-worker -> ZeroMQ -> tracker -> SQLite read model.
#include <catch2/catch.hpp>

#include <signal.h>

#include <zmq.hpp>

#include "harness.h"

using namespace asyncops::it;
using nlohmann::json;

TEST_CASE("a create is answered 202 with every header, then completes", "[pipeline]") {
  System sys;
  auto r = sys.send("POST", "/users", R"({"email":"ann@example.com","name":"Ann"})");
  INFO(sys.logs());
  REQUIRE(r.status == 202);
  std::string id = r.json["id"];
  CHECK(r.json["state"] == "pending");
  CHECK(r.header("X-Operation") == "/operations/" + id);
  CHECK(r.header("X-Resource").rfind("/users/", 0) == 0);
  CHECK(r.header("X-Resource") == r.json["resource"]);
  CHECK(r.header("Location").find("/operations/" + id) != std::string::npos);
  CHECK(r.header("Operation-Location") == r.header("Location"));
  CHECK(r.header("Retry-After") == "1");
  CHECK(r.header("Content-Type") == "application/json");

  auto done = sys.wait_terminal(id);
  CHECK(done["state"] == "completed");
  CHECK(done["code"] == "success");

  // Once completed, the resource is readable from the read model.
  auto user = sys.get(r.header("X-Resource"));
  REQUIRE(user.status == 200);
  CHECK(user.json["email"] == "ann@example.com");
  CHECK(user.json["name"] == "Ann");

  auto history = sys.get("/operations/" + id + "/history");
  REQUIRE(history.status == 200);
  std::vector<std::string> kinds;
  int64_t last_seq = 0;
  for (auto& h : history.json["items"]) {
    kinds.push_back(h["kind"]);
    CHECK(h["seq"].get<int64_t>() > last_seq);
    last_seq = h["seq"];
  }
  // "dispatched" is recorded when the dispatcher hands the command over; a
  // fast worker's "processing" can reach the store first, and then a late
  // "dispatched" is not recorded, since it would move nothing.
  std::vector<std::string> with = {"accepted", "dispatched", "processing", "completed"};
  std::vector<std::string> without = {"accepted", "processing", "completed"};
  CHECK((kinds == with || kinds == without));
}

TEST_CASE("a duplicate email is rejected with email_in_use", "[pipeline]") {
  System sys;
  auto first = sys.create_user("dup@example.com", "One");
  CHECK(sys.wait_terminal(first["id"])["state"] == "completed");
  auto second = sys.create_user("dup@example.com", "Two");
  auto done = sys.wait_terminal(second["id"]);
  INFO(sys.logs());
  CHECK(done["state"] == "rejected");
  CHECK(done["code"] == "email_in_use");
  CHECK(sys.get(second["resource"]).status == 404);
}

TEST_CASE("update and delete flow through to the read model", "[pipeline]") {
  System sys;
  auto created = sys.create_user("u@example.com", "U");
  REQUIRE(sys.wait_terminal(created["id"])["state"] == "completed");
  std::string path = created["resource"];
  auto upd = sys.send("PUT", path, R"({"name":"Renamed"})");
  REQUIRE(upd.status == 202);
  CHECK(upd.header("X-Resource") == path);
  REQUIRE(sys.wait_terminal(upd.json["id"])["state"] == "completed");
  CHECK(sys.get(path).json["name"] == "Renamed");

  auto del = sys.send("DELETE", path, "", "application/json");
  REQUIRE(del.status == 202);
  CHECK(del.header("X-Resource").empty());
  REQUIRE(sys.wait_terminal(del.json["id"])["state"] == "completed");
  CHECK(sys.get(path).status == 404);

  auto again = sys.send("DELETE", path, "", "application/json");
  auto done = sys.wait_terminal(again.json["id"]);
  CHECK(done["state"] == "rejected");
  CHECK(done["code"] == "user_not_found");
}

TEST_CASE("an unknown operation is 404, never pending", "[pipeline]") {
  System sys(0);
  auto r = sys.get("/operations/01a21bd5-8de8-7035-b06b-45d20b7cb380");
  CHECK(r.status == 404);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.json["status"] == 404);
}

TEST_CASE("every kind of bad input gets its problem+json status", "[pipeline]") {
  System sys(0);
  auto problem = [](const Response& r, int status) {
    CHECK(r.status == status);
    CHECK(r.header("Content-Type") == "application/problem+json");
    CHECK(r.json.is_object());
    CHECK(r.json["status"] == status);
    CHECK(r.json["type"] == "about:blank");
    CHECK(r.json.contains("title"));
  };
  problem(sys.send("POST", "/users", "{not json"), 400);
  auto invalid = sys.send("POST", "/users", R"({"email":42})");
  problem(invalid, 422);
  CHECK(invalid.json["errors"].size() == 2);
  problem(sys.get("/no/such/path"), 404);
  auto wrong = sys.send("PATCH", "/users", "{}");
  problem(wrong, 405);
  CHECK(wrong.header("Allow") == "GET, HEAD, POST");
  problem(sys.send("POST", "/users", std::string(1 << 20, ' ') + "{}"), 413);
  problem(sys.send("POST", "/users", "email=a", "application/x-www-form-urlencoded"), 415);
  // Nothing was accepted.
  CHECK(sys.get("/operations").json["items"].empty());
}

TEST_CASE("operation lists page with a stable cursor", "[pipeline]") {
  System sys(0);
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(sys.create_user("p" + std::to_string(i) + "@example.com", "P")["id"]);
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto r = sys.get("/operations?limit=3" + (cursor.empty() ? "" : "&cursor=" + cursor));
    REQUIRE(r.status == 200);
    for (auto& op : r.json["items"]) seen.push_back(op["id"]);
    if (pages == 0) sys.create_user("late@example.com", "Late");  // must not disturb the pages
    cursor = r.json["next"].is_string() ? r.json["next"].get<std::string>() : "";
    ++pages;
  } while (!cursor.empty());
  CHECK(pages == 3);
  CHECK(seen == std::vector<std::string>(ids.rbegin(), ids.rend()));
  CHECK(sys.get("/operations?state=pending&limit=100").json["items"].size() == 8);
  CHECK(sys.get("/operations?name=update_user").json["items"].empty());
}

TEST_CASE("the users read model pages too", "[pipeline]") {
  System sys;
  for (int i = 0; i < 3; ++i) {
    auto op = sys.create_user("r" + std::to_string(i) + "@example.com", "R");
    REQUIRE(sys.wait_terminal(op["id"])["state"] == "completed");
  }
  auto p1 = sys.get("/users?limit=2");
  REQUIRE(p1.json["items"].size() == 2);
  REQUIRE(p1.json["next"].is_string());
  auto p2 = sys.get("/users?limit=2&cursor=" + p1.json["next"].get<std::string>());
  CHECK(p2.json["items"].size() == 1);
  CHECK(p2.json["next"].is_null());
}

TEST_CASE("Prefer: wait on a command returns the finished operation with 200", "[pipeline]") {
  System sys;
  auto r = sys.send("POST", "/users", R"({"email":"w@example.com","name":"W"})", "application/json",
                    {{"Prefer", "wait=10"}});
  INFO(sys.logs());
  CHECK(r.status == 200);
  CHECK(r.json["state"] == "completed");
  CHECK(r.header("Preference-Applied") == "wait=10");
  CHECK(r.header("X-Operation") == "/operations/" + r.json["id"].get<std::string>());
  CHECK(r.header("X-Resource") == r.json["resource"]);
  // The answer comes from the change that ended the operation, not from a
  // read: it is the same document GET gives, less GET's detail members.
  auto same_as_get = [&sys](const json& answered) {
    auto g = sys.get("/operations/" + answered.value("id", ""));
    REQUIRE(g.status == 200);
    json doc = g.json;
    for (const char* detail : {"request", "params", "worker", "retries"}) doc.erase(detail);
    CHECK(answered == doc);
  };
  same_as_get(r.json);
  // A rejection is answered the same way.
  auto again = sys.send("POST", "/users", R"({"email":"w@example.com","name":"W2"})", "application/json",
                        {{"Prefer", "wait=10"}});
  CHECK(again.status == 200);
  CHECK(again.json["state"] == "rejected");
  CHECK(again.json["code"] == "email_in_use");
  same_as_get(again.json);
}

TEST_CASE("commands wait in the store while no worker runs, then complete", "[pipeline]") {
  System sys(0);
  auto op = sys.create_user("later@example.com", "Later");
  CHECK(sys.get("/operations/" + op["id"].get<std::string>() + "?wait=1").json["state"] == "pending");
  sys.start_worker();
  INFO(sys.logs());
  CHECK(sys.wait_terminal(op["id"])["state"] == "completed");
}

TEST_CASE("after kill -9, every accepted operation is in the store and unfinished ones end", "[pipeline]") {
  System sys(0);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(sys.create_user("k" + std::to_string(i) + "@example.com", "K")["id"]);
  sys.stop_daemon(SIGKILL);
  sys.start_daemon();
  sys.start_worker();
  INFO(sys.logs());
  for (const auto& id : ids) CHECK(sys.wait_terminal(id)["state"] == "completed");
}

TEST_CASE("undecodable and unknown events are counted and logged, never fatal", "[pipeline]") {
  System sys;
  zmq::context_t ctx(1);
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::linger, 1000);
  pub.connect("ipc://" + sys.data_dir() + "/events.ipc");
  zmq::message_t sub;
  REQUIRE(eventually([&] { return pub.recv(sub, zmq::recv_flags::dontwait).has_value(); }));
  auto send = [&](std::vector<std::string> frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      pub.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  };
  send({"event"});                                   // one frame
  send({"event", "{}", "extra"});                    // three frames
  send({"event", "{not json"});                      // bad JSON
  send({"gossip", "{}"});                            // unknown kind
  send({"event", R"({"request_id":"01a21bd5-8de8-7035-b06b-45d20b7cb380","state":"completed"})"});  // nobody's
  INFO(sys.logs());
  REQUIRE(eventually([&] { return sys.logs().find("event for an unknown operation") != std::string::npos; }));
  CHECK(sys.logs().find("undecodable message on the events socket") != std::string::npos);
  CHECK(sys.daemon().running());
  auto op = sys.create_user("ok@example.com", "Ok");
  CHECK(sys.wait_terminal(op["id"])["state"] == "completed");
}

TEST_CASE("SIGTERM stops the daemon cleanly and it restarts on the same store", "[pipeline]") {
  System sys;
  auto op = sys.create_user("t@example.com", "T");
  REQUIRE(sys.wait_terminal(op["id"])["state"] == "completed");
  sys.daemon().signal(SIGTERM);
  int status = sys.daemon().wait(std::chrono::seconds(20));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  sys.start_daemon();
  CHECK(sys.get("/operations/" + op["id"].get<std::string>()).json["state"] == "completed");
}

TEST_CASE("readyz and metrics: per-command counters and latency histograms", "[pipeline][metrics]") {
  System sys;
  CHECK(sys.get("/readyz").status == 200);
  CHECK(sys.get("/healthz").status == 200);
  auto a = sys.create_user("m@example.com", "M");
  auto b = sys.create_user("m2@example.com", "M2");
  REQUIRE(sys.wait_terminal(a["id"])["state"] == "completed");
  REQUIRE(sys.wait_terminal(b["id"])["state"] == "completed");
  auto m = sys.get("/metrics");
  CHECK(m.status == 200);
  CHECK(m.header("Content-Type").rfind("text/plain", 0) == 0);
  CHECK(m.body.find("asyncops_commands_accepted_total{command=\"create_user\"} 2\n") != std::string::npos);
  CHECK(m.body.find("asyncops_commands_completed_total{command=\"create_user\"} 2\n") != std::string::npos);
  CHECK(m.body.find("asyncops_accept_latency_seconds_count 2\n") != std::string::npos);
  CHECK(m.body.find("asyncops_end_to_end_latency_seconds_count 2\n") != std::string::npos);
  CHECK(m.body.find("asyncops_accept_latency_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
  CHECK(m.body.find("# TYPE asyncops_backlog gauge") != std::string::npos);
}
