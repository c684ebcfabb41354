// The asyncops CLI against a live daemon: output, exit codes, and `up`.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>

#include "harness.h"
#include "tests/loopback.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {
size_t count_lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }
}  // namespace

TEST_CASE("submit --wait exits 0 on completed and 3 on rejected, with JSON output", "[cli]") {
  System sys;
  auto ok = run_cli({"--url", sys.url(), "--json", "submit", "POST", "/users", "-d",
                     R"({"email":"c@example.com","name":"C"})", "--wait", "--timeout", "20"});
  INFO(ok.err << sys.logs());
  CHECK(ok.exit_code == 0);
  auto op = json::parse(ok.out);
  CHECK(op["state"] == "completed");
  CHECK(op["name"] == "create_user");

  auto dup = run_cli({"--url", sys.url(), "-o", "json", "submit", "post", "/users", "--data",
                      R"({"email":"c@example.com","name":"D"})", "--wait"});
  CHECK(dup.exit_code == 3);
  CHECK(json::parse(dup.out)["code"] == "email_in_use");

  auto got = run_cli({"--url", sys.url(), "--json", "get", op["id"]});
  CHECK(got.exit_code == 0);
  CHECK(json::parse(got.out)["id"] == op["id"]);

  auto list = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--limit", "10"});
  CHECK(list.exit_code == 0);
  CHECK(count_lines(list.out) == 2);
  auto listed = run_cli({"--url", sys.url(), "--json", "list", "--state", "rejected"});
  CHECK(json::parse(listed.out)["items"].size() == 1);
}

TEST_CASE("submit --data @file reads the body from a file", "[cli]") {
  System sys;
  std::string file = sys.data_dir() + "/body.json";
  std::ofstream(file) << R"({"email":"f@example.com","name":"F"})";
  auto r = run_cli({"--url", sys.url(), "--json", "submit", "POST", "/users", "-d", "@" + file, "--wait"});
  CHECK(r.exit_code == 0);
  CHECK(json::parse(r.out)["state"] == "completed");
}

TEST_CASE("a failed operation exits 4", "[cli]") {
  // A route to a command the users service has no handler for.
  TempDir dir;
  std::string routes = dir.path + "/routes.json";
  std::ofstream(routes) << R"({"routes":[{"method":"POST","path":"/widgets","command":"create_widget",
    "service":"users","resource":"/widgets/{id}","additional_fields":true}]})";
  System sys(1, {"--routes", routes});
  auto r = run_cli({"--url", sys.url(), "--json", "submit", "POST", "/widgets", "-d", "{}", "--wait"});
  INFO(r.err << sys.logs());
  CHECK(r.exit_code == 4);
  CHECK(json::parse(r.out)["code"] == "unknown_command");
}

TEST_CASE("errors are one line on stderr with their exit code", "[cli]") {
  System sys(0);
  auto missing = run_cli({"--url", sys.url(), "get", "01a21bd5-8de8-7035-b06b-45d20b7cb380"});
  CHECK(missing.exit_code == 1);
  CHECK(count_lines(missing.err) == 1);
  CHECK(missing.err.find("404") != std::string::npos);
  CHECK(missing.out.empty());

  auto invalid = run_cli({"--url", sys.url(), "submit", "POST", "/users", "-d", R"({"email":1})"});
  CHECK(invalid.exit_code == 1);
  CHECK(count_lines(invalid.err) == 1);
  CHECK(invalid.err.find("422") != std::string::npos);

  auto usage = run_cli({"get"});
  CHECK(usage.exit_code == 2);
  CHECK(count_lines(usage.err) == 1);
  CHECK(run_cli({"frobnicate"}).exit_code == 2);
  CHECK(run_cli({"submit", "GET", "/users"}).exit_code == 2);

  auto down = run_cli({"--url", "http://127.0.0.1:1", "get", "x"});
  CHECK(down.exit_code == 6);
  CHECK(count_lines(down.err) == 1);
}

TEST_CASE("list: the more hint keeps the filters, goes to stderr in a pipe, and --all follows every page", "[cli][list]") {
  System sys;
  auto first = sys.create_user("p@example.com", "P");
  sys.wait_terminal(first["id"]);
  for (const char* n : {"Q", "R"}) sys.wait_terminal(sys.create_user("p@example.com", n)["id"]);
  // Page one of the rejected create_user operations: one row, and the exact
  // command for the next page on stderr (stdout is a pipe here).
  auto page = run_cli({"--url", sys.url(), "list", "--state", "rejected", "--name", "create_user", "--limit", "1"});
  INFO(page.err << sys.logs());
  REQUIRE(page.exit_code == 0);
  CHECK(count_lines(page.out) == 2);  // header and one row
  REQUIRE(page.err.rfind("more: asyncops --url " + sys.url() + " list --state rejected --name create_user --limit 1 --cursor ", 0) == 0);
  std::vector<std::string> next_args;
  std::istringstream words(page.err.substr(std::string("more: asyncops ").size()));
  for (std::string w; words >> w;) next_args.push_back(w);
  next_args.insert(next_args.begin(), {"-o", "jsonl"});
  auto second = run_cli(next_args);
  REQUIRE(second.exit_code == 0);
  REQUIRE(count_lines(second.out) == 1);
  CHECK(json::parse(second.out)["state"] == "rejected");
  CHECK(second.err.empty());  // the last page: no hint
  // -o jsonl: the cursor comes as the same stderr line.
  auto jsonl = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--limit", "1"});
  CHECK(count_lines(jsonl.out) == 1);
  CHECK(jsonl.err.find("more: asyncops --url " + sys.url() + " -o jsonl list --limit 1 --cursor ") == 0);
  // --all: every page, whatever the page size.
  auto all = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--all", "--limit", "1", "--since", "1h"});
  CHECK(count_lines(all.out) == 3);
  CHECK(all.err.empty());
  auto all_json = run_cli({"--url", sys.url(), "--json", "list", "--all", "--limit", "2", "--state", "rejected"});
  auto doc = json::parse(all_json.out);
  CHECK(doc["items"].size() == 2);
  CHECK(doc["next"].is_null());
  CHECK(run_cli({"--url", sys.url(), "list", "--since", "yesterday"}).exit_code == 2);
}

TEST_CASE("get, watch and cancel take X-Operation, the Location URL, or a unique id prefix", "[cli][ref]") {
  System sys;
  auto r = sys.send("POST", "/users", R"({"email":"ref@example.com","name":"R"})");
  REQUIRE(r.status == 202);
  std::string id = r.json["id"];
  sys.wait_terminal(id);
  auto other = sys.create_user("ref2@example.com", "S");
  sys.wait_terminal(other["id"]);
  for (const std::string& ref : {r.header("X-Operation"), r.header("Location"), id.substr(0, 32)}) {
    auto got = run_cli({"--url", sys.url(), "--json", "get", ref});
    INFO(ref << ": " << got.err);
    CHECK(got.exit_code == 0);
    if (got.exit_code == 0) CHECK(json::parse(got.out)["id"] == id);
  }
  // Both ids start with the same 4 digits (the same minute or so): ambiguous.
  auto amb = run_cli({"--url", sys.url(), "get", id.substr(0, 4)});
  CHECK(amb.exit_code == 1);
  CHECK(count_lines(amb.err) == 1);
  CHECK(amb.err.find("ambiguous") != std::string::npos);
  CHECK(amb.err.find(id) != std::string::npos);
  CHECK(amb.err.find(other["id"].get<std::string>()) != std::string::npos);
  auto none = run_cli({"--url", sys.url(), "get", "ffff"});
  CHECK(none.exit_code == 1);
  CHECK(none.err.find("no operation id starts with ffff") != std::string::npos);
  auto odd = run_cli({"--url", sys.url(), "get", "not-an-id!"});  // passed through: the daemon's 404
  CHECK(odd.exit_code == 1);
  CHECK(odd.err.find("404") != std::string::npos);
  auto w = run_cli({"--url", sys.url(), "-o", "jsonl", "watch", id.substr(0, 30), "--timeout", "10"});
  CHECK(w.exit_code == 0);
  CHECK(w.out.find(id) != std::string::npos);
  // cancel resolves too: a finished operation answers 409, which names the id.
  auto c = run_cli({"--url", sys.url(), "cancel", r.header("X-Operation")});
  CHECK(c.err.find("/operations//operations") == std::string::npos);
}

TEST_CASE("ASYNCOPS_URL sets the daemon address, and --url beats it", "[cli]") {
  System sys(0);
  CHECK(run_cli({"list"}, {{"ASYNCOPS_URL", sys.url()}}).exit_code == 0);
  CHECK(run_cli({"--url", sys.url(), "list"}, {{"ASYNCOPS_URL", "http://127.0.0.1:1"}}).exit_code == 0);
  CHECK(run_cli({"list"}, {{"ASYNCOPS_URL", "http://127.0.0.1:1"}}).exit_code == 6);
}

TEST_CASE("up runs the system, restarts a dead worker, and stops cleanly on SIGTERM", "[cli][up]") {
  TempDir dir;
  std::string log = dir.path + "/up.log";
  std::string out = dir.path + "/up.out";
  // stdout (the URL) and stderr go to one file here; the URL is its own line.
  std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", dir.path + "/run"}};
  Process up({ASYNCOPS_CLI_BIN, "up", "--data-dir", dir.path, "--listen", "127.0.0.1:0", "--workers", "1"}, log, env);
  std::string url = wait_for_url_line(log);
  REQUIRE(!url.empty());
  INFO(slurp(log));
  auto ok = run_cli({"--url", url, "--json", "submit", "POST", "/users", "-d",
                     R"({"email":"up@example.com","name":"Up"})", "--wait", "--timeout", "20"});
  CHECK(ok.exit_code == 0);

  // Kill the worker; `up` must start another, which then does work.
  std::string pids = slurp("/proc/" + std::to_string(up.pid()) + "/task/" + std::to_string(up.pid()) + "/children");
  std::istringstream ps(pids);
  std::vector<int> children;
  for (int p; ps >> p;) children.push_back(p);
  REQUIRE(children.size() == 2);  // the daemon and one worker
  ::kill(children[1], SIGKILL);
  REQUIRE(eventually([&] { return slurp(log).find("restarting") != std::string::npos; }));
  auto again = run_cli({"--url", url, "--json", "submit", "POST", "/users", "-d",
                        R"({"email":"up2@example.com","name":"Up2"})", "--wait", "--timeout", "20"});
  CHECK(again.exit_code == 0);

  // Another shell finds the daemon through the pointer `up` left (issue 16):
  // no --url, no ASYNCOPS_URL, no data dir.
  std::string pointer = dir.path + "/run/asyncops/current";
  CHECK(slurp(pointer).find("url=" + url + "\n") != std::string::npos);
  auto found = run_cli({"-o", "jsonl", "list"}, env);
  CHECK(found.exit_code == 0);
  CHECK(count_lines(found.out) == 2);
  auto config = run_cli({"config", "-o", "json"}, env);
  CHECK(config.out.find("\"current\"") != std::string::npos);
  // --data-dir is a global option, before or after the command.
  CHECK(run_cli({"--data-dir", dir.path, "stats", "-o", "json"}, env).exit_code == 0);
  CHECK(run_cli({"list", "--data-dir", dir.path}, {{"XDG_RUNTIME_DIR", dir.path + "/elsewhere"}}).exit_code == 0);

  up.signal(SIGTERM);
  int status = up.wait(std::chrono::seconds(20));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  for (int c : children) CHECK(::kill(c, 0) != 0);  // the children are gone too
  CHECK(::access(pointer.c_str(), F_OK) != 0);  // a clean exit removes the pointer
}

namespace {
// A daemon on a fixed port, so that it can be killed and started again at
// the same URL.
struct FixedPortDaemon {
  std::string dir, url, listen;
  Process proc;
  FixedPortDaemon(const std::string& data_dir, int port) : dir(data_dir) {
    listen = "127.0.0.1:" + std::to_string(port);
    url = "http://" + listen;
  }
  void start() {
    ::unlink((dir + "/asyncopsd.url").c_str());
    proc = Process({ASYNCOPSD_BIN, "--data-dir", dir, "--listen", listen}, dir + "/daemon.log");
    if (!eventually([&] { return slurp(dir + "/asyncopsd.url").rfind("http", 0) == 0; })) {
      throw std::runtime_error("asyncopsd did not start: " + slurp(dir + "/daemon.log"));
    }
  }
};

}  // namespace

TEST_CASE("tail and watch say when the connection is lost and when it is back, and miss nothing", "[cli][reconnect]") {
  TempDir dir;
  FixedPortDaemon d(dir.path, asyncops::test::free_loopback_port());
  d.start();
  std::string tail_log = dir.path + "/tail.log", watch_log = dir.path + "/watch.log";
  Process tail({ASYNCOPS_CLI_BIN, "--url", d.url, "tail"}, tail_log);
  httplib::Client http(d.url);
  auto sse_clients = [&] {
    auto m = http.Get("/metrics");
    if (!m) return -1;
    auto pos = m->body.find("\nasyncops_sse_clients ");
    return pos == std::string::npos ? -1 : std::stoi(m->body.substr(pos + 22));
  };
  REQUIRE(eventually([&] { return sse_clients() == 1; }));  // tail is following before the command
  auto created = http.Post("/users", R"({"email":"rc@example.com","name":"RC"})", "application/json");
  REQUIRE(created);
  std::string id = json::parse(created->body)["id"];
  Process watch({ASYNCOPS_CLI_BIN, "--url", d.url, "-o", "jsonl", "watch", id, "--timeout", "60"}, watch_log);
  REQUIRE(eventually([&] { return slurp(tail_log).find(id) != std::string::npos; }));
  REQUIRE(eventually([&] { return slurp(watch_log).find("pending") != std::string::npos; }));

  d.proc.signal(SIGKILL);
  d.proc.wait(std::chrono::seconds(10));
  CHECK(eventually([&] { return slurp(tail_log).find("asyncops: connection lost, retrying") != std::string::npos; }));
  CHECK(eventually([&] { return slurp(watch_log).find("asyncops: connection lost, retrying") != std::string::npos; }));
  d.start();
  INFO(slurp(tail_log) << slurp(watch_log));
  CHECK(eventually([&] { return slurp(tail_log).find("asyncops: connection back") != std::string::npos; },
                   std::chrono::seconds(30)));
  CHECK(eventually([&] { return slurp(watch_log).find("asyncops: connection back") != std::string::npos; },
                   std::chrono::seconds(30)));
  // A worker now does the work; both see the end.
  Process worker({ASYNCOPS_WORKER_BIN, "--data-dir", dir.path, "--service", "users"}, dir.path + "/worker.log");
  int status = watch.wait(std::chrono::seconds(40));
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(eventually([&] { return slurp(tail_log).find("\"completed\"") != std::string::npos; }));
  CHECK(count_lines(slurp(tail_log)) >= 3);
  tail.signal(SIGINT);
  tail.wait(std::chrono::seconds(10));
}

TEST_CASE("cancel by ids or by filters with a count, and forget", "[cli][bulk]") {
  System sys(0);  // no workers: operations stay pending
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(sys.create_user("bulk" + std::to_string(i) + "@example.com", "B")["id"]);
  CHECK(run_cli({"--url", sys.url(), "cancel"}).exit_code == 2);
  CHECK(run_cli({"--url", sys.url(), "cancel", ids[0], "--state", "pending"}).exit_code == 2);
  auto young = run_cli({"--url", sys.url(), "cancel", "--name", "create_user", "--older-than", "1h"});
  CHECK(young.exit_code == 0);
  CHECK(young.err.find("nothing to cancel") != std::string::npos);
  // Two by id (one as X-Operation), then the rest by filter.
  auto two = run_cli({"--url", sys.url(), "-o", "json", "cancel", ids[0], "/operations/" + ids[1]});
  INFO(two.err);
  CHECK(two.exit_code == 0);
  CHECK(json::parse(two.out)["items"].size() == 2);
  CHECK(two.err.find("canceled 2") != std::string::npos);
  auto rest = run_cli({"--url", sys.url(), "-o", "jsonl", "cancel", "--state", "pending", "--name", "create_user", "--yes"});
  CHECK(rest.exit_code == 0);
  CHECK(count_lines(rest.out) == 2);
  for (const auto& id : ids) CHECK(sys.get("/operations/" + id).json["state"] == "canceled");
  // forget: DELETE /operations/{id}.
  auto gone = run_cli({"--url", sys.url(), "forget", ids[0], ids[1].substr(0, 33)});
  CHECK(gone.exit_code == 0);
  CHECK(gone.out == "forgot " + ids[0] + "\nforgot " + ids[1] + "\n");
  CHECK(sys.get("/operations/" + ids[0]).status == 404);
  auto pending = sys.create_user("unfinished@example.com", "U");
  auto refused = run_cli({"--url", sys.url(), "forget", pending["id"]});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("409") != std::string::npos);
}

TEST_CASE("waiting past --timeout exits 5, saying when no live worker serves the operation's service",
          "[cli][workers]") {
  System sys(0);
  auto none = run_cli({"--url", sys.url(), "submit", "POST", "/users", "-d",
                       R"({"email":"nw@example.com","name":"N"})", "--wait", "--timeout", "1"});
  CHECK(none.exit_code == 5);
  CHECK(count_lines(none.err) == 1);
  CHECK(none.err.find("timed out") != std::string::npos);
  CHECK(none.err.find("no live worker serves service 'users'") != std::string::npos);
  CHECK(none.err.find("asyncops worker --service users") != std::string::npos);

  // A live worker that does not get to it (stopped): the plain timeout.
  sys.start_worker();
  REQUIRE(eventually([&] { return sys.get("/workers").json["items"].size() == 1; }));
  sys.workers().back().signal(SIGSTOP);
  auto stalled = run_cli({"--url", sys.url(), "submit", "POST", "/users", "-d",
                          R"({"email":"nw2@example.com","name":"N"})", "--wait", "--timeout", "1"});
  sys.workers().back().signal(SIGCONT);
  CHECK(stalled.exit_code == 5);
  CHECK(stalled.err.find("no live worker") == std::string::npos);
  CHECK(stalled.err.find("(still pending)") != std::string::npos);
}

TEST_CASE("retry runs a finished command again as a new operation: the request shows in get and export",
          "[cli][retry]") {
  System sys;
  std::string alice = add_token(sys.data_dir(), "alice", "submitter");
  std::string bob = add_token(sys.data_dir(), "bob", "submitter");
  REQUIRE(eventually([&] { return sys.get("/operations").status == 401; }, std::chrono::seconds(5)));
  std::map<std::string, std::string> as_alice = {{"ASYNCOPS_TOKEN", alice}};
  auto first = run_cli({"--url", sys.url(), "-o", "json", "submit", "POST", "/users", "-d",
                        R"({"email":"retry@example.com","name":"Re"})", "--wait", "--timeout", "20"},
                       as_alice);
  INFO(first.err << sys.logs());
  REQUIRE(first.exit_code == 0);
  std::string id = json::parse(first.out)["id"];

  // The same email again is rejected: the retry runs the same command.
  auto retry = run_cli({"--url", sys.url(), "-o", "json", "retry", id.substr(0, 13), "--wait", "--timeout", "20"},
                       as_alice);
  INFO(retry.err);
  CHECK(retry.exit_code == 3);
  auto again = json::parse(retry.out);
  CHECK(again["retry_of"] == id);
  CHECK(again["code"] == "email_in_use");
  CHECK(again["owner"] == "alice");

  auto got = run_cli({"--url", sys.url(), "-o", "json", "get", id}, as_alice);
  REQUIRE(got.exit_code == 0);
  auto original = json::parse(got.out);
  CHECK(original["request"]["method"] == "POST");
  CHECK(original["request"]["path"] == "/users");
  CHECK(original["request"]["body"]["email"] == "retry@example.com");
  CHECK(original["owner"] == "alice");
  CHECK(original["service"] == "users");
  CHECK(original["worker"].is_string());
  CHECK(original["retries"] == json::array({again["id"]}));

  // Another principal's operation cannot be retried: 404, as if unknown.
  auto theirs = run_cli({"--url", sys.url(), "retry", id}, {{"ASYNCOPS_TOKEN", bob}});
  CHECK(theirs.exit_code == 1);
  CHECK(theirs.err.find("404") != std::string::npos);

  // The export is a full backup: the request, its owner and the link.
  auto exp = run_cli({"store", "--data-dir", sys.data_dir(), "export"});
  REQUIRE(exp.exit_code == 0);
  std::istringstream lines(exp.out);
  std::map<std::string, json> by_id;
  for (std::string line; std::getline(lines, line);) {
    auto j = json::parse(line);
    by_id[j["id"].get<std::string>()] = j;
  }
  REQUIRE(by_id.count(id) == 1);
  CHECK(by_id[id]["request"]["body"]["name"] == "Re");
  CHECK(by_id[id]["owner"] == "alice");
  CHECK(by_id[again["id"].get<std::string>()]["retry_of"] == id);
}

TEST_CASE("list --owner is an admin's: --code and --resource filter list and cancel, kept in the more-hint",
          "[cli][filters]") {
  System sys(0);  // nothing runs: every operation stays pending
  std::string alice = add_token(sys.data_dir(), "alice", "submitter");
  std::string root = add_token(sys.data_dir(), "root", "admin");
  REQUIRE(eventually([&] { return sys.get("/operations").status == 401; }, std::chrono::seconds(5)));
  std::map<std::string, std::string> as_alice = {{"ASYNCOPS_TOKEN", alice}}, as_root = {{"ASYNCOPS_TOKEN", root}};
  std::vector<json> ops;
  for (int i = 0; i < 3; ++i) {
    auto s = run_cli({"--url", sys.url(), "-o", "json", "submit", "POST", "/users", "-d",
                      R"({"email":"fl)" + std::to_string(i) + R"(@example.com","name":"F"})"},
                     as_alice);
    REQUIRE(s.exit_code == 0);
    ops.push_back(json::parse(s.out));
  }
  // --owner: alice may name herself only; an admin anyone.
  auto other = run_cli({"--url", sys.url(), "list", "--owner", "root"}, as_alice);
  CHECK(other.exit_code == 1);
  CHECK(other.err.find("403") != std::string::npos);
  CHECK(count_lines(run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--owner", "alice"}, as_alice).out) == 3);
  CHECK(count_lines(run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--owner", "alice"}, as_root).out) == 3);
  CHECK(count_lines(run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--owner", "root"}, as_root).out) == 0);
  // --resource with a page of 1: the hint repeats it.
  auto page = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--resource", "/users/", "--until", "2999-01-01T00:00:00Z",
                       "--limit", "1"},
                      as_alice);
  REQUIRE(page.exit_code == 0);
  CHECK(page.err.find("--until 2999-01-01T00:00:00Z --resource /users/ --limit 1 --cursor") != std::string::npos);
  auto code = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--code", "email_in_use"}, as_alice);
  CHECK(code.exit_code == 0);
  CHECK(code.out.empty());
  CHECK(run_cli({"--url", sys.url(), "list", "--until", "later"}, as_alice).exit_code == 2);

  // cancel --resource chooses the unfinished operations on that resource only.
  std::string res = ops[1]["resource"];
  auto cancel = run_cli({"--url", sys.url(), "-o", "json", "cancel", "--resource", res, "--yes"}, as_alice);
  INFO(cancel.err);
  REQUIRE(cancel.exit_code == 0);
  auto left = run_cli({"--url", sys.url(), "-o", "jsonl", "list", "--state", "pending"}, as_alice);
  CHECK(count_lines(left.out) == 2);
  CHECK(left.out.find(ops[1]["id"].get<std::string>()) == std::string::npos);
}
