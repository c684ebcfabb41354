// Services without C++ (issue 13): exec and http handlers declared in the
// config file, run by the real asyncops-worker against the real asyncopsd.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include "harness.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

void write_file(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  ::chmod(path.c_str(), mode);
}

size_t count_of(const std::vector<std::string>& lines, const std::string& needle) {
  size_t n = 0;
  for (const auto& l : lines) n += l.find(needle) != std::string::npos;
  return n;
}

bool pid_alive(pid_t pid) { return pid > 0 && ::kill(pid, 0) == 0; }

// The route table of these tests: POST /things (a new id), DELETE /things/{id}.
std::string things_routes(const std::string& service) {
  return json{{"routes",
               {{{"method", "POST"}, {"path", "/things"}, {"command", "make_thing"}, {"service", service},
                 {"resource", "/things/{id}"}, {"additional_fields", true}, {"body", json::object()}},
                {{"method", "DELETE"}, {"path", "/things/{id}"}, {"command", "drop_thing"}, {"service", service},
                 {"resource", ""}}}}}
      .dump();
}

// A shell exec handler that does what the payload's "mode" says. Every run
// appends "REQUEST_ID ATTEMPT" to $STATE/runs; the effect (a line with the
// request id in $STATE/effects) is made once per request id.
const char* k_exec_handler = R"SH(#!/bin/sh
cmd=$(cat)
echo "$ASYNCOPS_REQUEST_ID $ASYNCOPS_ATTEMPT $ASYNCOPS_COMMAND $ASYNCOPS_SERVICE" >> "$STATE/runs"
id=$(printf '%s' "$cmd" | sed -n 's/.*"params":{"id":"\([^"]*\)"}.*/\1/p')
case "$cmd" in
  *'"mode":"reject"'*) echo '{"code":"out_of_stock","message":"no tea left"}'; exit 3;;
  *'"mode":"fail"'*) echo "the disk is on fire" >&2; exit 2;;
  *'"mode":"tempfail"'*) echo "busy" >&2; exit 75;;
  *'"mode":"garbage"'*) echo 'this is not json'; exit 0;;
  *'"mode":"hang"'*) sleep 60 & echo $! > "$STATE/hang.$ASYNCOPS_REQUEST_ID"; wait; exit 0;;
  *'"mode":"slow"'*) sleep 3;;
esac
if [ "$ASYNCOPS_COMMAND" = drop_thing ]; then echo '{"deleted": true}'; exit 0; fi
grep -q "^$ASYNCOPS_REQUEST_ID\$" "$STATE/effects" 2>/dev/null || echo "$ASYNCOPS_REQUEST_ID" >> "$STATE/effects"
printf '{"id":"%s","made_by":"%s"}\n' "$id" "$ASYNCOPS_REQUEST_ID"
)SH";

// The same in the lines mode: one process, a command per line.
const char* k_lines_handler = R"SH(#!/bin/sh
echo "$$" >> "$STATE/starts"
while IFS= read -r cmd; do
  rid=$(printf '%s' "$cmd" | sed -n 's/.*,"id":"\([^"]*\)","name".*/\1/p')
  case "$cmd" in
    *'"mode":"reject"'*) printf '{"id":"%s","outcome":"rejected","code":"out_of_stock","message":"none"}\n' "$rid";;
    *'"mode":"hang"'*) sleep 60;;
    *) printf '{"id":"%s","outcome":"completed","data":{"pid":%s,"made_by":"%s"}}\n' "$rid" "$$" "$rid";;
  esac
done
)SH";

// A daemon and the workers of one declared service, on a temp dir.
struct ServiceFixture {
  TempDir files;  // the config, routes, handler and its state
  std::unique_ptr<System> sys;
  std::string config;
  std::string state;

  // section: the [service.things] keys, one per line.
  explicit ServiceFixture(const std::string& section, const std::string& handler = k_exec_handler,
                          int workers = 1) {
    state = files.path + "/state";
    ::mkdir(state.c_str(), 0700);
    write_file(files.path + "/handler.sh", handler, 0755);
    write_file(files.path + "/routes.json", things_routes("things"));
    config = files.path + "/asyncops.conf";
    write_file(config, "[service.things]\n" + section + "env = STATE=" + state + "\n");
    sys = std::make_unique<System>(0, std::vector<std::string>{"--routes", files.path + "/routes.json"});
    for (int i = 0; i < workers; ++i) start_worker();
  }
  void start_worker() { sys->start_worker({"--config", config, "--service", "things"}); }

  // POST /things with payload, and the accepted operation's id.
  std::string submit(const json& payload) {
    auto r = sys->send("POST", "/things", payload.dump());
    REQUIRE(r.status == 202);
    return r.json["id"].get<std::string>();
  }
  // A handler that hangs in a `sleep 60` of its own: its operation's id,
  // and the sleeper's pid once the handler has written it.
  struct Hung {
    std::string op;
    pid_t sleeper;
  };
  Hung submit_hang() {
    std::string op = submit({{"mode", "hang"}});
    std::string pid_file = state + "/hang." + op;
    REQUIRE(eventually([&] { return !slurp(pid_file).empty(); }));
    return {op, std::stoi(slurp(pid_file))};
  }
  // One POST per mode, in order: the accepted operations' ids.
  template <size_t N>
  std::array<std::string, N> submit_modes(const char* const (&modes)[N]) {
    std::array<std::string, N> ids;
    for (size_t i = 0; i < N; ++i) ids[i] = submit({{"mode", modes[i]}});
    return ids;
  }
  json finish(const std::string& op, int seconds = 30) {
    json j = sys->wait_terminal(op, seconds);
    INFO(sys->logs());
    REQUIRE(j.value("done", false));
    return j;
  }
  std::vector<std::string> runs() const { return lines_of(slurp(state + "/runs")); }
  std::vector<std::string> effects() const { return lines_of(slurp(state + "/effects")); }
};

}  // namespace

TEST_CASE("exec: completed, rejected, and a failure retried then failed with the stderr tail", "[services][exec]") {
  ServiceFixture f("kind = exec\ncommand = ./handler.sh\nconcurrency = 4\nattempts = 2\nbackoff = 100ms\n");
  auto [ok, rejected, failed, tempfail, garbage] = f.submit_modes({"ok", "reject", "fail", "tempfail", "garbage"});

  json done = f.finish(ok);
  CHECK(done["state"] == "completed");
  std::string resource = done["resource"].get<std::string>();
  auto got = f.sys->get(resource);
  CHECK(got.status == 200);
  CHECK(got.json["made_by"] == ok);
  // The environment: request id, attempt, command, service.
  CHECK(count_of(f.runs(), ok + " 1 make_thing things") == 1);

  json rej = f.finish(rejected);
  CHECK(rej["state"] == "rejected");
  CHECK(rej["code"] == "out_of_stock");
  CHECK(rej["message"] == "no tea left");

  json fail = f.finish(failed);
  CHECK(fail["state"] == "failed");
  CHECK(fail["code"] == "handler_failed");
  CHECK(fail["message"].get<std::string>().find("the disk is on fire") != std::string::npos);
  CHECK(fail["message"].get<std::string>().find("exit code 2") != std::string::npos);
  CHECK(count_of(f.runs(), failed + " 1 ") == 1);
  CHECK(count_of(f.runs(), failed + " 2 ") == 1);

  json temp = f.finish(tempfail);
  CHECK(temp["state"] == "failed");
  CHECK(temp["code"] == "handler_unavailable");
  CHECK(count_of(f.runs(), tempfail) == 2);

  // Success with output that is not JSON: the effect may have happened, so
  // it is not run again.
  json bad = f.finish(garbage);
  CHECK(bad["state"] == "failed");
  CHECK(bad["code"] == "bad_output");
  CHECK(count_of(f.runs(), garbage) == 1);

  // A DELETE: {"deleted": true} removes the resource.
  auto del = f.sys->send("DELETE", resource, "");
  REQUIRE(del.status == 202);
  CHECK(f.finish(del.json["id"].get<std::string>())["state"] == "completed");
  CHECK(f.sys->get(resource).status == 404);
}

TEST_CASE("exec: a hung handler is stopped at its timeout, with its process group", "[services][exec]") {
  ServiceFixture f("kind = exec\ncommand = ./handler.sh\ntimeout = 1s\nattempts = 1\n");
  auto hung = f.submit_hang();
  json j = f.finish(hung.op);
  CHECK(j["state"] == "failed");
  CHECK(j["code"] == "handler_timeout");
  CHECK(j["message"].get<std::string>().find("timed out after 1s") != std::string::npos);
  // The handler's own child (sleep 60) went with it: the group was signalled.
  CHECK(eventually([&] { return !pid_alive(hung.sleeper); }, std::chrono::seconds(5)));
}

TEST_CASE("exec: a cancel stops a running handler and the operation ends canceled", "[services][exec]") {
  ServiceFixture f("kind = exec\ncommand = ./handler.sh\ntimeout = 60s\n");
  auto hung = f.submit_hang();
  auto start = Clock::now();
  auto c = f.sys->send("POST", "/operations/" + hung.op + "/cancel", "");
  REQUIRE(c.status / 100 == 2);
  json j = f.finish(hung.op);
  CHECK(j["state"] == "canceled");
  CHECK(Clock::now() - start < std::chrono::seconds(20));
  CHECK(eventually([&] { return !pid_alive(hung.sleeper); }, std::chrono::seconds(5)));
  // Once an outcome is recorded, a cancel changes nothing.
  std::string ok = f.submit({{"mode", "ok"}});
  CHECK(f.finish(ok)["state"] == "completed");
  f.sys->send("POST", "/operations/" + ok + "/cancel", "");
  CHECK(f.sys->get("/operations/" + ok).json["state"] == "completed");
}

TEST_CASE("exec: after kill -9 of a worker mid-handler, a recorded outcome is re-published, not re-run",
          "[services][exec]") {
  ServiceFixture f("kind = exec\ncommand = ./handler.sh\nconcurrency = 3\n");
  // `first` and `second` finish (their outcomes recorded) while the daemon
  // is stopped, so their events die with it; `mid` is killed with the
  // worker half-way through its handler.
  std::string first = f.submit({{"mode", "slow"}});
  std::string second = f.submit({{"mode", "slow"}});
  std::string mid = f.submit({{"mode", "hang"}});
  REQUIRE(eventually([&] { return f.runs().size() == 3 && !slurp(f.state + "/hang." + mid).empty(); }));
  f.sys->daemon().signal(SIGSTOP);
  std::string db_path = f.sys->data_dir() + "/things.db";
  auto recorded_in_db = [&](const std::string& id) {
    try {
      SQLite::Database db(db_path, SQLite::OPEN_READONLY);
      SQLite::Statement q(db, "SELECT count(*) FROM handled WHERE request_id = ?");
      q.bind(1, id);
      return q.executeStep() && q.getColumn(0).getInt() == 1;
    } catch (const std::exception&) {
      return false;
    }
  };
  REQUIRE(eventually([&] { return recorded_in_db(first) && recorded_in_db(second); }, std::chrono::seconds(20)));
  CHECK_FALSE(recorded_in_db(mid));
  f.sys->daemon().signal(SIGKILL);
  f.sys->daemon().wait(std::chrono::seconds(10));
  for (auto& w : f.sys->workers()) w.signal(SIGKILL);
  for (auto& w : f.sys->workers()) w.wait(std::chrono::seconds(10));

  // The daemon restarts and sends every operation not yet terminal again.
  f.sys->start_daemon();
  f.start_worker();
  json a = f.finish(first);
  json b = f.finish(second);
  CHECK(a["state"] == "completed");
  CHECK(b["state"] == "completed");
  // Recorded before the crash: re-published, not run a second time.
  CHECK(count_of(f.runs(), first) == 1);
  CHECK(count_of(f.runs(), second) == 1);
  CHECK(count_of(f.effects(), first) == 1);
  CHECK(count_of(f.effects(), second) == 1);
  // The one cut short had no outcome: the new worker runs it again (its
  // shell died with the old worker), and it hangs again; a cancel ends it
  // canceled, as nothing was recorded.
  REQUIRE(eventually([&] { return count_of(f.runs(), mid) == 2; }, std::chrono::seconds(20)));
  f.sys->send("POST", "/operations/" + mid + "/cancel", "");
  CHECK(f.finish(mid)["state"] == "canceled");
  CHECK(count_of(f.effects(), mid) == 0);
}

TEST_CASE("exec lines: one long-lived process, restarted when it dies", "[services][exec][lines]") {
  ServiceFixture f("kind = exec\ncommand = ./handler.sh\nlines = true\nconcurrency = 2\ntimeout = 1s\nattempts = 2\n"
                   "backoff = 100ms\n",
                   k_lines_handler);
  std::string a = f.submit({{"mode", "ok"}});
  std::string b = f.submit({{"mode", "ok"}});
  std::string r = f.submit({{"mode", "reject"}});
  json ja = f.finish(a), jb = f.finish(b), jr = f.finish(r);
  CHECK(ja["state"] == "completed");
  CHECK(jb["state"] == "completed");
  CHECK(jr["state"] == "rejected");
  CHECK(jr["code"] == "out_of_stock");
  auto starts = lines_of(slurp(f.state + "/starts"));
  REQUIRE(starts.size() == 1);  // one process for all three
  CHECK(f.sys->get(ja["resource"].get<std::string>()).json["pid"] == std::stoi(starts[0]));

  // It dies: the next command starts it again.
  ::kill(std::stoi(starts[0]), SIGKILL);
  std::string c = f.submit({{"mode", "ok"}});
  CHECK(f.finish(c)["state"] == "completed");
  CHECK(lines_of(slurp(f.state + "/starts")).size() == 2);

  // A command it never answers times out; the process is restarted for the next.
  std::string hang = f.submit({{"mode", "hang"}});
  json jh = f.finish(hang);
  CHECK(jh["state"] == "failed");
  CHECK(jh["code"] == "handler_timeout");
  std::string d = f.submit({{"mode", "ok"}});
  CHECK(f.finish(d)["state"] == "completed");
}

namespace {

// A small HTTP upstream inside the test, on a free port. What it does for
// POST /things/{id} depends on the body's "mode".
struct Upstream {
  httplib::Server server;
  int port = 0;
  std::thread thread;
  std::mutex mutex;
  std::vector<json> requests;  // GUARDED_BY(mutex): method, path, headers, body, at_ms
  std::atomic<bool> release{false};

  Upstream() {
    auto record = [this](const httplib::Request& req) {
      std::lock_guard<std::mutex> lock(mutex);
      requests.push_back({{"method", req.method},
                          {"path", req.path},
                          {"key", req.get_header_value("Idempotency-Key")},
                          {"request_id", req.get_header_value("X-Request-Id")},
                          {"body", req.body},
                          {"at_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                        Clock::now().time_since_epoch()).count()}});
    };
    server.Post(R"(/things/([^/]+))", [this, record](const httplib::Request& req, httplib::Response& res) {
      record(req);
      auto body = json::parse(req.body, nullptr, false);
      std::string mode = body.is_object() ? body.value("mode", "ok") : "ok";
      if (mode == "reject") {
        res.status = 422;
        res.set_content(R"({"type":"https://example.com/probs/out-of-stock","title":"Out of stock","detail":"no tea"})",
                        "application/problem+json");
      } else if (mode == "reject_code") {
        res.status = 409;
        res.set_content(R"({"type":"about:blank","code":"already_there","detail":"exists"})", "application/problem+json");
      } else if (mode == "reject_plain") {
        res.status = 404;
        res.set_content("nope", "text/plain");
      } else if (mode == "busy") {
        res.status = 503;
        res.set_header("Retry-After", "1");
        res.set_content("overloaded", "text/plain");
      } else if (mode == "hang") {
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        res.status = 500;
      } else {
        res.status = 201;
        res.set_content(json{{"id", req.matches[1].str()}, {"mode", mode}}.dump(), "application/json");
      }
    });
    server.Delete(R"(/things/([^/]+))", [record](const httplib::Request& req, httplib::Response& res) {
      record(req);
      res.status = 204;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~Upstream() {
    release = true;
    server.stop();
    thread.join();
  }
  std::vector<json> for_key(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex);
    std::vector<json> out;
    for (const auto& r : requests) {
      if (r["key"] == key) out.push_back(r);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("http: completed, rejected with the problem's code, retried honouring Retry-After, then failed",
          "[services][http]") {
  Upstream up;
  ServiceFixture f("kind = http\nurl = http://127.0.0.1:" + std::to_string(up.port) +
                   "/things/{id}\nconcurrency = 4\nattempts = 2\nbackoff = 100ms\ntimeout = 5s\n");
  auto [ok, rej, rej_code, rej_plain, busy] = f.submit_modes({"ok", "reject", "reject_code", "reject_plain", "busy"});

  json j = f.finish(ok);
  CHECK(j["state"] == "completed");
  auto sent = up.for_key(ok);
  REQUIRE(sent.size() == 1);
  CHECK(sent[0]["request_id"] == ok);  // Idempotency-Key and X-Request-Id: the request id
  CHECK(sent[0]["path"] == j["resource"]);  // /things/{id} from the route's params
  CHECK(json::parse(sent[0]["body"].get<std::string>()) == json{{"mode", "ok"}});
  CHECK(f.sys->get(j["resource"].get<std::string>()).json["mode"] == "ok");

  json r1 = f.finish(rej);
  CHECK(r1["state"] == "rejected");
  CHECK(r1["code"] == "out-of-stock");  // the last segment of the problem's type
  CHECK(r1["message"] == "no tea");
  CHECK(f.finish(rej_code)["code"] == "already_there");
  CHECK(f.finish(rej_plain)["code"] == "http_404");

  json b = f.finish(busy);
  CHECK(b["state"] == "failed");
  CHECK(b["code"] == "upstream_unavailable");
  auto tries = up.for_key(busy);
  REQUIRE(tries.size() == 2);
  // Retry-After: 1 beats the 100 ms backoff.
  CHECK(tries[1]["at_ms"].get<int64_t>() - tries[0]["at_ms"].get<int64_t>() >= 900);

  // DELETE: 204 deletes the resource.
  auto del = f.sys->send("DELETE", j["resource"].get<std::string>(), "");
  REQUIRE(del.status == 202);
  CHECK(f.finish(del.json["id"].get<std::string>())["state"] == "completed");
  CHECK(f.sys->get(j["resource"].get<std::string>()).status == 404);
}

TEST_CASE("http: a timeout and an unreachable upstream fail after their attempts, and a cancel aborts the request",
          "[services][http]") {
  Upstream up;
  ServiceFixture f("kind = http\nurl = http://127.0.0.1:" + std::to_string(up.port) +
                   "/things/{id}\nconcurrency = 4\nattempts = 2\nbackoff = 100ms\ntimeout = 1s\n");
  std::string slow = f.submit({{"mode", "hang"}});
  json t = f.finish(slow);
  CHECK(t["state"] == "failed");
  CHECK(t["code"] == "upstream_timeout");
  CHECK(up.for_key(slow).size() == 2);

  // A cancel while the request is under way.
  ServiceFixture g("kind = http\nurl = http://127.0.0.1:" + std::to_string(up.port) + "/things/{id}\ntimeout = 60s\n");
  std::string hung = g.submit({{"mode", "hang"}});
  REQUIRE(eventually([&] { return up.for_key(hung).size() == 1; }));
  auto start = Clock::now();
  g.sys->send("POST", "/operations/" + hung + "/cancel", "");
  CHECK(g.finish(hung)["state"] == "canceled");
  CHECK(Clock::now() - start < std::chrono::seconds(20));

  // Nobody listens on the port.
  // A port nobody listens on. (An httplib::Server bound only to find one
  // keeps its socket listening, SO_REUSEPORT: connections to it then hang.)
  int closed_port = free_port();
  ServiceFixture h("kind = http\nurl = http://127.0.0.1:" + std::to_string(closed_port) +
                   "/things/{id}\nattempts = 2\nbackoff = 100ms\ntimeout = 2s\n");
  json u = h.finish(h.submit({{"mode", "ok"}}));
  CHECK(u["state"] == "failed");
  CHECK(u["code"] == "upstream_unreachable");
}

namespace {

// `asyncops up` as a child, and its URL once it prints it.
std::string wait_for_url(const std::string& log) {
  std::string url;
  eventually([&] {
    for (const auto& line : lines_of(slurp(log))) {
      if (line.rfind("http://", 0) == 0) url = line;
    }
    return !url.empty();
  }, std::chrono::seconds(60));
  return url;
}

}  // namespace

TEST_CASE("up starts the workers of three declared services, and refuses a mismatch naming it", "[services][up]") {
  Upstream up;
  TempDir dir;
  write_file(dir.path + "/handler.sh", k_exec_handler, 0755);
  ::mkdir((dir.path + "/state").c_str(), 0700);
  json routes = json::parse(things_routes("things"));
  routes["routes"].push_back({{"method", "POST"}, {"path", "/users"}, {"command", "create_user"}, {"service", "users"},
                              {"resource", "/users/{id}"},
                              {"body", {{"email", {{"type", "string"}, {"required", true}}},
                                        {"name", {{"type", "string"}, {"required", true}}}}}});
  routes["routes"].push_back({{"method", "POST"}, {"path", "/parcels"}, {"command", "make_thing"},
                              {"service", "parcels"}, {"resource", "/parcels/{id}"}, {"additional_fields", true},
                              {"body", json::object()}});
  write_file(dir.path + "/routes.json", routes.dump());
  std::string services = "[service.things]\nkind = exec\ncommand = ./handler.sh\nworkers = 2\nenv = STATE=" +
                         dir.path + "/state\n\n[service.parcels]\nkind = http\nurl = http://127.0.0.1:" +
                         std::to_string(up.port) + "/things/{id}\n\n[service.users]\nkind = users\n";
  write_file(dir.path + "/asyncops.conf", "[daemon]\nroutes = " + dir.path + "/routes.json\n\n" + services);
  std::string data = dir.path + "/data";
  std::string log = dir.path + "/up.log";
  std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", dir.path + "/run"}};
  Process proc({ASYNCOPS_CLI_BIN, "up", "--config", dir.path + "/asyncops.conf", "--data-dir", data, "--listen",
                "127.0.0.1:0"},
               log, env);
  std::string url = wait_for_url(log);
  INFO(slurp(log));
  REQUIRE(!url.empty());
  auto submit = [&](const std::string& path, const std::string& body) {
    return run_cli({"--url", url, "--json", "submit", "POST", path, "-d", body, "--wait", "--timeout", "30"});
  };
  auto thing = submit("/things", R"({"mode":"ok"})");
  CHECK(thing.exit_code == 0);
  auto parcel = submit("/parcels", R"({"mode":"ok"})");
  CHECK(parcel.exit_code == 0);
  auto user = submit("/users", R"({"email":"three@example.com","name":"Three"})");
  CHECK(user.exit_code == 0);
  // Each worker says its service and kind: two exec, one http, one users.
  std::multiset<std::string> kinds;
  REQUIRE(eventually([&] {
    auto w = run_cli({"--url", url, "workers", "-o", "json"});
    auto j = json::parse(w.out, nullptr, false);
    kinds.clear();
    if (!j.is_object() || !j.contains("items") || !j["items"].is_array()) return false;
    for (const auto& x : j["items"]) kinds.insert(x.value("service", "") + "/" + x.value("kind", ""));
    return kinds.size() == 4;
  }, std::chrono::seconds(20)));
  CHECK(kinds.count("things/exec") == 2);
  CHECK(kinds.count("parcels/http") == 1);
  CHECK(kinds.count("users/users") == 1);
  auto table = run_cli({"--url", url, "workers"});
  CHECK(table.out.find("KIND") != std::string::npos);
  proc.signal(SIGTERM);
  CHECK(proc.wait(std::chrono::seconds(20)) != -1);

  // A declared service no route uses, and a route whose service is not
  // declared: each refused with one line naming it.
  write_file(dir.path + "/extra.conf", "[daemon]\nroutes = " + dir.path + "/routes.json\n\n" + services +
                                           "\n[service.ghost]\nkind = exec\ncommand = true\n");
  auto extra = run_cli({"up", "--config", dir.path + "/extra.conf", "--data-dir", data, "--listen", "127.0.0.1:0"});
  CHECK(extra.exit_code == 2);
  CHECK(lines_of(extra.err).size() == 1);
  CHECK(extra.err.find("'ghost' is declared but no route uses it") != std::string::npos);
  write_file(dir.path + "/missing.conf", "[daemon]\nroutes = " + dir.path + "/routes.json\n\n[service.things]\n"
                                             "kind = exec\ncommand = true\n[service.users]\nkind = users\n");
  auto missing = run_cli({"up", "--config", dir.path + "/missing.conf", "--data-dir", data, "--listen", "127.0.0.1:0"});
  CHECK(missing.exit_code == 2);
  CHECK(lines_of(missing.err).size() == 1);
  CHECK(missing.err.find("service 'parcels'") != std::string::npos);
}
