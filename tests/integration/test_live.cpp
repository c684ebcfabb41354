// Live operations: SSE streams with resume, waiting without polling, and
// the CLI's watch and tail.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

struct Received {
  std::vector<int64_t> ids;
  std::vector<json> ops;
  int status = 0;
  std::string content_type;
  bool completed = false;  // the server ended the stream
};

// Reads an SSE stream; stops after max_events events when max_events > 0.
Received read_stream(const std::string& url, const std::string& path, int64_t last_id = -1,
                     size_t max_events = 0) {
  Received out;
  httplib::Client c(url);
  c.set_read_timeout(30);
  httplib::Headers h;
  if (last_id >= 0) h.emplace("Last-Event-ID", std::to_string(last_id));
  std::string buf;
  bool stop = false;
  auto r = c.Get(
      path, h,
      [&](const httplib::Response& res) {
        out.status = res.status;
        out.content_type = res.get_header_value("Content-Type");
        return true;
      },
      [&](const char* d, size_t n) {
        return feed_sse(buf, d, n, [&](const SseBlock& e) {
          if (e.data.empty()) return true;
          out.ids.push_back(e.id);
          out.ops.push_back(json::parse(e.data));
          stop = max_events && out.ids.size() >= max_events;
          return !stop;
        });
      });
  out.completed = !stop && r;
  if (r) out.status = r->status;
  return out;
}

int sse_clients(System& sys) {
  auto body = sys.get("/metrics").body;
  auto pos = body.find("\nasyncops_sse_clients ");
  return pos == std::string::npos ? -1 : std::stoi(body.substr(pos + 22));
}

std::vector<int64_t> history_seqs(System& sys, const std::string& id) {
  std::vector<int64_t> out;
  auto r = sys.get("/operations/" + id + "/history");  // named: the loop must not outlive it
  for (auto& h : r.json["items"]) out.push_back(h["seq"]);
  return out;
}

}  // namespace

TEST_CASE("an operation's stream starts with its state and ends at the terminal state", "[live]") {
  System sys;
  auto op = sys.create_user("s@example.com", "S");
  std::string id = op["id"];
  auto got = read_stream(sys.url(), "/operations/" + id + "/events");
  INFO(sys.logs());
  CHECK(got.status == 200);
  CHECK(got.content_type.rfind("text/event-stream", 0) == 0);
  CHECK(got.completed);
  REQUIRE(!got.ops.empty());
  CHECK(got.ops.back()["state"] == "completed");
  CHECK(got.ops.back()["done"] == true);
  // Every event after the first is a history entry, in order.
  auto seqs = history_seqs(sys, id);
  CHECK(std::is_sorted(got.ids.begin(), got.ids.end()));
  CHECK(got.ids.back() == seqs.back());
  // Reconnecting after the end gets 204, which stops EventSource retrying.
  auto again = read_stream(sys.url(), "/operations/" + id + "/events", got.ids.back());
  CHECK(again.status == 204);
  CHECK(again.ids.empty());
}

TEST_CASE("resume: a reconnect with Last-Event-ID gets exactly the missed events, in order", "[live]") {
  System sys(0);
  auto op = sys.create_user("r@example.com", "R");
  std::string id = op["id"];
  // Connect, take the first event (the current state), and disconnect.
  auto first = read_stream(sys.url(), "/operations/" + id + "/events", -1, 1);
  REQUIRE(first.ids.size() == 1);
  CHECK(first.ops[0]["state"] == "pending");
  // Changes happen while disconnected.
  sys.start_worker();
  REQUIRE(sys.wait_terminal(id)["state"] == "completed");
  auto rest = read_stream(sys.url(), "/operations/" + id + "/events", first.ids[0]);
  INFO(sys.logs());
  auto seqs = history_seqs(sys, id);
  std::vector<int64_t> missed(std::upper_bound(seqs.begin(), seqs.end(), first.ids[0]), seqs.end());
  CHECK(rest.ids == missed);
  CHECK(rest.completed);
  CHECK(rest.ops.back()["state"] == "completed");
}

TEST_CASE("resume on the all-operations stream: no gap, no duplicate", "[live]") {
  System sys;
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(sys.create_user("a" + std::to_string(i) + "@example.com", "A")["id"]);
  for (auto& id : ids) REQUIRE(sys.wait_terminal(id)["done"] == true);
  auto part = read_stream(sys.url(), "/events", 0, 5);  // replay from the start, stop midway
  REQUIRE(part.ids.size() == 5);
  for (int i = 0; i < 3; ++i) ids.push_back(sys.create_user("b" + std::to_string(i) + "@example.com", "B")["id"]);
  for (auto& id : ids) REQUIRE(sys.wait_terminal(id)["done"] == true);
  std::vector<int64_t> all;
  for (auto& id : ids) {
    auto s = history_seqs(sys, id);
    all.insert(all.end(), s.begin(), s.end());
  }
  std::sort(all.begin(), all.end());
  // Read the rest live: stop once the last seq arrives.
  std::vector<int64_t> expect(std::upper_bound(all.begin(), all.end(), part.ids.back()), all.end());
  auto rest = read_stream(sys.url(), "/events", part.ids.back(), expect.size());
  CHECK(rest.ids == expect);
  std::vector<int64_t> joined = part.ids;
  joined.insert(joined.end(), rest.ids.begin(), rest.ids.end());
  CHECK(joined == all);
}

TEST_CASE("the all-operations stream filters by state and name, live", "[live]") {
  System sys;
  Received got;
  std::thread reader([&] { got = read_stream(sys.url(), "/events?state=rejected&name=create_user", -1, 1); });
  REQUIRE(eventually([&] { return sse_clients(sys) == 1; }));
  auto a = sys.create_user("f@example.com", "F");
  // Two workers may take commands in either order: let the first finish.
  REQUIRE(sys.wait_terminal(a["id"])["state"] == "completed");
  auto b = sys.create_user("f@example.com", "F2");  // rejected: email_in_use
  reader.join();
  REQUIRE(got.ops.size() == 1);
  CHECK(got.ops[0]["id"] == b["id"]);
  CHECK(got.ops[0]["code"] == "email_in_use");
  (void)a;
}

TEST_CASE("?wait returns at the timeout when nothing happens, and Prefer: wait is acknowledged", "[live]") {
  System sys(0);
  auto op = sys.create_user("n@example.com", "N");
  std::string id = op["id"];
  auto start = Clock::now();
  auto r = sys.get("/operations/" + id + "?wait=1");
  CHECK(Clock::now() - start >= std::chrono::milliseconds(900));
  CHECK(r.json["state"] == "pending");
  CHECK(r.header("Retry-After") == "1");
  auto p = sys.get("/operations/" + id, {{"Prefer", "wait=1"}});
  CHECK(p.header("Preference-Applied") == "wait=1");
  // A command that does not finish in time is the usual 202.
  auto cmd = sys.send("POST", "/users", R"({"email":"m@example.com","name":"M"})", "application/json",
                      {{"Prefer", "respond-async, wait=1"}});
  CHECK(cmd.status == 202);
  CHECK(cmd.header("Preference-Applied") == "wait=1");
  CHECK(cmd.header("Retry-After") == "1");
}

TEST_CASE("?wait returns early when the operation ends", "[live]") {
  System sys(0);
  auto op = sys.create_user("e@example.com", "E");
  std::string id = op["id"];
  Response r;
  auto start = Clock::now();
  std::thread waiter([&] { r = sys.get("/operations/" + id + "?wait=30"); });
  REQUIRE(eventually([&] { return sse_clients(sys) == 1; }));
  sys.start_worker();
  waiter.join();
  CHECK(r.json["state"] == "completed");
  CHECK(Clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("watch exits with the code of each final state", "[live][cli]") {
  TempDir dir;
  std::string routes = dir.path + "/routes.json";
  std::ofstream(routes) << R"({"routes":[
    {"method":"POST","path":"/users","command":"create_user","service":"users","resource":"/users/{id}",
     "additional_fields":true},
    {"method":"POST","path":"/widgets","command":"create_widget","service":"users","additional_fields":true}]})";
  System sys(1, {"--routes", routes});
  auto ok = sys.create_user("x@example.com", "X");
  auto dup = sys.create_user("x@example.com", "X");
  auto bad = sys.send("POST", "/widgets", "{}").json;
  auto watch = [&](const json& op) {
    return run_cli({"--url", sys.url(), "watch", op["id"].get<std::string>(), "--timeout", "20"});
  };
  auto w1 = watch(ok);
  INFO(w1.out << w1.err << sys.logs());
  CHECK(w1.exit_code == 0);
  CHECK(w1.out.find("completed") != std::string::npos);
  CHECK(watch(dup).exit_code == 3);
  CHECK(watch(bad).exit_code == 4);
  auto lines = run_cli({"--url", sys.url(), "watch", ok["id"].get<std::string>(), "-o", "jsonl"});
  CHECK(json::parse(lines.out.substr(0, lines.out.find('\n')))["id"] == ok["id"]);
  CHECK(run_cli({"--url", sys.url(), "watch", "01a21bd5-8de8-7035-b06b-45d20b7cb380"}).exit_code == 1);
}

TEST_CASE("watch --timeout exits 5 while the operation is still pending", "[live][cli]") {
  System sys(0);
  auto op = sys.create_user("p@example.com", "P");
  auto w = run_cli({"--url", sys.url(), "watch", op["id"].get<std::string>(), "--timeout", "1"});
  CHECK(w.exit_code == 5);
}

TEST_CASE("tail in JSON-lines mode shows operations submitted while it runs", "[live][cli]") {
  System sys;
  std::string out = sys.data_dir() + "/tail.out";
  Process tail({ASYNCOPS_CLI_BIN, "--url", sys.url(), "tail"}, out);
  REQUIRE(eventually([&] { return sse_clients(sys) == 1; }));
  auto op = sys.create_user("t@example.com", "T");
  std::string id = op["id"];
  REQUIRE(eventually([&] {
    std::istringstream in(slurp(out));
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j["id"] == id && j["state"] == "completed") return true;
    }
    return false;
  }));
  std::istringstream in(slurp(out));
  std::vector<std::string> states;
  for (std::string line; std::getline(in, line);) {
    auto j = json::parse(line);  // every line is one JSON object
    if (j["id"] == id) states.push_back(j["state"]);
  }
  CHECK(states.front() == "pending");
  CHECK(states.back() == "completed");
  tail.signal(SIGINT);
  int status = tail.wait(std::chrono::seconds(10));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("CORS is off by default and allows a configured origin", "[live]") {
  System closed(0);
  auto r = closed.get("/operations", {{"Origin", "http://app.example"}});
  CHECK(r.header("Access-Control-Allow-Origin").empty());
  System open(0, {"--cors-origin", "http://app.example"});
  auto ops = open.get("/operations", {{"Origin", "http://app.example"}});
  CHECK(ops.header("Access-Control-Allow-Origin") == "http://app.example");
  CHECK(ops.header("Access-Control-Expose-Headers").find("X-Operation") != std::string::npos);
  CHECK(open.get("/operations", {{"Origin", "http://evil.example"}}).header("Access-Control-Allow-Origin").empty());
}
