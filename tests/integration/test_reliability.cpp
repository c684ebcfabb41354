// Nothing lost: fault injection against the real daemon and workers.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "harness.h"
#include "ipc_peer.h"
#include "tests/loopback.h"
#include "shared/envelope.h"
#include "tests/tools/tcp_proxy.h"
#include "workers/services/users.h"
#include "workers/worker.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

// A peer on the commands socket that takes commands and never answers, like
// a worker that dies with them; close() drops the connection. It announces
// credit (docs/protocol.md §4a) while it waits, and never claims.
class BlackHole : IpcPeer {
 public:
  explicit BlackHole(const std::string& data_dir) : IpcPeer(data_dir, zmq::socket_type::dealer, "commands.users", 0) {}
  // Waits for one command and returns it.
  std::optional<asyncops::Command> take(std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      // Said again and again: the daemon forgets a connection silent for 3 s.
      auto f = asyncops::encode(asyncops::ReadyMessage{"black-hole", "users", 1000});
      std::array<zmq::const_buffer, 2> ready = {zmq::buffer(f.kind), zmq::buffer(f.body)};
      zmq::send_multipart(m_socket, ready, zmq::send_flags::dontwait);
      zmq::pollitem_t item{m_socket.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(500)) == 0) continue;
      std::vector<zmq::message_t> parts;
      if (!zmq::recv_multipart(m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
      if (parts.size() != 2) return std::nullopt;
      auto c = asyncops::decode_command(parts[0].to_string(), parts[1].to_string());
      if (!c) return std::nullopt;
      return c.value();
    }
    return std::nullopt;
  }
  void close() { m_socket.close(); }
};

// A user's create operation whose first attempt the hole took: dispatched,
// and no worker will answer it.
struct Held {
  json op;
  std::string id;
  asyncops::Command command;
};
Held create_user_held(System& sys, BlackHole& hole, const std::string& email, const std::string& name) {
  Held held{sys.create_user(email, name), "", {}};
  held.id = held.op["id"].get<std::string>();
  auto taken = hole.take();
  REQUIRE(taken);
  held.command = *taken;
  return held;
}

std::vector<std::string> history_kinds(System& sys, const std::string& id) {
  auto r = sys.get("/operations/" + id + "/history");
  std::vector<std::string> out;
  for (auto& h : r.json["items"]) out.push_back(h["kind"]);
  return out;
}

int count_users(System& sys) {
  SQLite::Database db(sys.data_dir() + "/users.db", SQLite::OPEN_READONLY);
  return db.execAndGet("SELECT count(*) FROM users").getInt();
}

// Sends one raw HTTP request and returns the status code (0 on failure).
int raw_status(const std::string& url, const std::string& request) {
  int fd = asyncops::test::connect_loopback(std::stoi(url.substr(url.rfind(':') + 1)));
  if (fd < 0) return 0;
  ssize_t sent = ::send(fd, request.data(), request.size(), 0);
  char buf[64] = {0};
  ssize_t n = sent > 0 ? ::recv(fd, buf, sizeof buf - 1, MSG_WAITALL) : 0;
  ::close(fd);
  return n >= 12 ? std::atoi(buf + 9) : 0;
}

const std::vector<std::string> k_fast_leases = {"--lease", "300ms", "--backoff", "50ms"};
// Fast leases for tests about redelivery, not about giving up: on a loaded
// machine a worker can take longer to start than 5 short attempts last.
const std::vector<std::string> k_fast_leases_patient = {"--lease", "300ms", "--backoff", "50ms",
                                                        "--max-attempts", "100"};

}  // namespace

TEST_CASE("a command lost with its worker is redelivered and completes", "[reliability]") {
  System sys(0, k_fast_leases_patient);
  BlackHole hole(sys.data_dir());
  auto [op, id, taken] = create_user_held(sys, hole, "lost@example.com", "Lost");
  CHECK(taken.id == id);
  CHECK(taken.attempt == 1);
  hole.close();  // the "worker" dies holding it
  sys.start_worker();
  auto done = sys.wait_terminal(id);
  INFO(sys.logs());
  CHECK(done["state"] == "completed");
  CHECK(done["attempt"].get<int>() >= 2);
  auto kinds = history_kinds(sys, id);
  CHECK(std::find(kinds.begin(), kinds.end(), "redelivered") != kinds.end());
  CHECK(metric(sys, "asyncops_redeliveries_total") >= 1);
}

TEST_CASE("work done whose outcome was lost is re-published on redelivery, with one effect", "[reliability]") {
  System sys(0, k_fast_leases_patient);
  BlackHole hole(sys.data_dir());
  auto [op, id, cmd] = create_user_held(sys, hole, "once@example.com", "Once");
  {
    // A worker did the work and recorded it, then died before publishing.
    asyncops::Service users = asyncops::users_service();
    SQLite::Database db(sys.data_dir() + "/users.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    asyncops::Worker::init_database(users, db);
    auto e = asyncops::Worker::handle(users, db, cmd, "doomed");
    REQUIRE(e.state == asyncops::OpState::completed);
  }
  hole.close();
  sys.start_worker();
  auto done = sys.wait_terminal(id);
  INFO(sys.logs());
  CHECK(done["state"] == "completed");
  CHECK(count_users(sys) == 1);  // no second user
  CHECK(sys.get(op["resource"]).status == 200);
}

TEST_CASE("after the maximum attempts the operation fails with worker_timeout", "[reliability]") {
  auto args = k_fast_leases;
  args.insert(args.end(), {"--max-attempts", "2"});
  System sys(0, args);
  BlackHole hole(sys.data_dir());  // takes every attempt and never answers
  std::string id = create_user_held(sys, hole, "never@example.com", "Never").id;
  auto second = hole.take();
  REQUIRE(second);
  CHECK(second->attempt == 2);
  auto done = sys.wait_terminal(id);
  INFO(sys.logs());
  CHECK(done["state"] == "failed");
  CHECK(done["code"] == "worker_timeout");
  CHECK(done["message"].get<std::string>().find("2 attempts") != std::string::npos);
}

TEST_CASE("an event for no known operation is counted and reported", "[reliability]") {
  System sys;
  zmq::context_t ctx(1);
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.connect("ipc://" + sys.data_dir() + "/events.ipc");
  zmq::message_t sub;
  REQUIRE(eventually([&] { return pub.recv(sub, zmq::recv_flags::dontwait).has_value(); }));
  asyncops::Event e;
  e.request_id = "01a21bd5-8de8-7035-b06b-45d20b7cb380";
  e.state = asyncops::OpState::completed;
  auto f = asyncops::encode(e);
  pub.send(zmq::buffer(f.kind), zmq::send_flags::sndmore);
  pub.send(zmq::buffer(f.body));
  CHECK(eventually([&] { return metric(sys, "asyncops_events_unknown_total") == 1; }));
}

TEST_CASE("kill -9 under load: every 202 is in the store and every one ends", "[reliability]") {
  System sys(0);
  std::mutex m;
  std::vector<std::string> accepted;
  std::atomic<bool> stop{false};
  std::thread client([&] {
    httplib::Client c(sys.url());
    c.set_connection_timeout(1);
    for (int i = 0; i < 100000 && !stop; ++i) {
      auto r = c.Post("/users", json{{"email", "load" + std::to_string(i) + "@example.com"}, {"name", "L"}}.dump(),
                      "application/json");
      if (!r) break;  // the daemon died under us
      if (r->status == 202) {
        std::lock_guard<std::mutex> lock(m);
        accepted.push_back(json::parse(r->body)["id"]);
      }
    }
  });
  REQUIRE(eventually([&] {
    std::lock_guard<std::mutex> lock(m);
    return accepted.size() >= 200;
  }));
  sys.daemon().signal(SIGKILL);
  sys.daemon().wait(std::chrono::seconds(10));
  stop = true;
  client.join();
  sys.start_daemon();
  sys.start_worker();
  sys.start_worker();
  INFO(sys.logs());
  size_t ended = 0;
  for (const auto& id : accepted) {
    auto op = sys.wait_terminal(id, 60);
    CHECK(op["done"] == true);
    ended += op["done"] == true;
  }
  CHECK(ended == accepted.size());
}

TEST_CASE("live workers are listed with their service, host, pid and heartbeat", "[reliability]") {
  System sys(2);
  Response r;
  REQUIRE(eventually([&] {
    r = sys.get("/workers");
    return r.json["items"].size() == 2;
  }));
  for (auto& w : r.json["items"]) {
    CHECK(w["service"] == "users");
    CHECK(w["pid"].get<int>() > 0);
    CHECK(!w["host"].get<std::string>().empty());
    CHECK(w.contains("in_flight"));
    CHECK(w.contains("last_heartbeat"));
  }
  auto cli = run_cli({"--url", sys.url(), "--json", "workers"});
  CHECK(cli.exit_code == 0);
  CHECK(json::parse(cli.out)["items"].size() == 2);  // the one -o json shape (issue 16)
  sys.workers()[0].signal(SIGKILL);
  CHECK(eventually([&] { return sys.get("/workers").json["items"].size() == 1; }, std::chrono::seconds(20)));
}

TEST_CASE("past the backlog limit a command gets 503 with Retry-After", "[reliability]") {
  System sys(0, {"--max-backlog", "3"});
  for (int i = 0; i < 3; ++i) sys.create_user("b" + std::to_string(i) + "@example.com", "B");
  auto r = sys.send("POST", "/users", R"({"email":"over@example.com","name":"O"})");
  CHECK(r.status == 503);
  CHECK(r.header("Content-Type") == "application/problem+json");
  CHECK(r.header("Retry-After") == "5");
  CHECK(r.json["code"] == "backlog_full");
  sys.start_worker();  // the backlog drains, and commands are taken again
  CHECK(eventually([&] {
    return sys.send("POST", "/users", R"({"email":"later@example.com","name":"L"})").status == 202;
  }));
}

TEST_CASE("an Idempotency-Key replays the same operation, and refuses a different payload", "[reliability]") {
  System sys;
  httplib::Headers key = {{"Idempotency-Key", "k-123"}};
  auto a = sys.send("POST", "/users", R"({"email":"i@example.com","name":"I"})", "application/json", key);
  REQUIRE(a.status == 202);
  REQUIRE(sys.wait_terminal(a.json["id"])["state"] == "completed");
  auto b = sys.send("POST", "/users", R"({"name":"I", "email":"i@example.com"})", "application/json", key);
  CHECK(b.status == 202);
  CHECK(b.body == a.body);
  for (const char* h : {"X-Operation", "X-Resource", "Location", "Operation-Location", "Retry-After"}) {
    CHECK(b.header(h) == a.header(h));
  }
  CHECK(b.header("Idempotent-Replayed") == "true");
  auto c = sys.send("POST", "/users", R"({"email":"other@example.com","name":"I"})", "application/json", key);
  CHECK(c.status == 422);
  CHECK(c.json["code"] == "idempotency_key_reused");
  CHECK(sys.get("/operations").json["items"].size() == 1);
  CHECK(count_users(sys) == 1);
}

TEST_CASE("canceling a pending operation ends it canceled and it is never handled", "[reliability]") {
  System sys(0);
  auto op = sys.create_user("c@example.com", "C");
  std::string id = op["id"];
  auto r = sys.send("POST", "/operations/" + id + "/cancel", "");
  CHECK(r.status == 200);
  CHECK(r.json["state"] == "canceled");
  CHECK(r.json["code"] == "canceled");
  auto second = sys.create_user("d@example.com", "D");  // proves a worker ran after
  sys.start_worker();
  REQUIRE(sys.wait_terminal(second["id"])["state"] == "completed");
  CHECK(sys.get("/operations/" + id).json["state"] == "canceled");
  CHECK(sys.get(op["resource"]).status == 404);
  CHECK(count_users(sys) == 1);
  auto again = sys.send("POST", "/operations/" + id + "/cancel", "");
  CHECK(again.status == 409);
  // `curl -X POST` sends no Content-Length: the body is empty (RFC 9112),
  // not a bad request.
  CHECK(raw_status(sys.url(), "POST /operations/" + id + "/cancel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 409);
  CHECK(sys.send("POST", "/operations/01a21bd5-8de8-7035-b06b-45d20b7cb380/cancel", "").status == 404);
}

TEST_CASE("canceling a dispatched command: the worker is told and it ends canceled, unhandled", "[reliability]") {
  System sys(0, k_fast_leases);
  BlackHole hole(sys.data_dir());
  std::string id = create_user_held(sys, hole, "cx@example.com", "CX").id;  // a worker has it
  auto r = run_cli({"--url", sys.url(), "--json", "cancel", id});
  CHECK(r.exit_code == 0);
  CHECK(json::parse(r.out)["cancel_requested"] == true);
  hole.close();  // that worker dies; the redelivery carries the cancel
  sys.start_worker();
  auto done = sys.wait_terminal(id);
  INFO(sys.logs());
  CHECK(done["state"] == "canceled");
  CHECK(count_users(sys) == 0);
}

TEST_CASE("finished operations are pruned after the retention period", "[reliability]") {
  System sys(1, {"--retention", "1s", "--prune-interval", "100ms"});
  auto op = sys.create_user("old@example.com", "Old");
  std::string id = op["id"];
  REQUIRE(sys.wait_terminal(id)["state"] == "completed");
  CHECK(eventually([&] { return sys.get("/operations/" + id).status == 404; }, std::chrono::seconds(20)));
  CHECK(sys.get(op["resource"]).status == 200);  // the read model is not history
}

TEST_CASE("DELETE forgets a finished operation and refuses an unfinished one", "[reliability]") {
  System sys(0);
  auto pending = sys.create_user("p@example.com", "P");
  CHECK(sys.send("DELETE", "/operations/" + pending["id"].get<std::string>(), "").status == 409);
  sys.start_worker();
  REQUIRE(sys.wait_terminal(pending["id"])["state"] == "completed");
  CHECK(sys.send("DELETE", "/operations/" + pending["id"].get<std::string>(), "").status == 204);
  CHECK(sys.get("/operations/" + pending["id"].get<std::string>()).status == 404);
}

TEST_CASE("store prune forgets old finished operations from the file", "[reliability][cli]") {
  System sys(1);
  auto op = sys.create_user("sp@example.com", "SP");
  REQUIRE(sys.wait_terminal(op["id"])["state"] == "completed");
  auto keep = run_cli({"--json", "store", "--data-dir", sys.data_dir(), "prune", "--older-than", "1h"});
  CHECK(keep.exit_code == 0);
  CHECK(json::parse(keep.out)["pruned"] == 0);
  auto gone = run_cli({"--json", "store", "--data-dir", sys.data_dir(), "prune", "--older-than", "0s"});
  CHECK(gone.exit_code == 0);
  CHECK(json::parse(gone.out)["pruned"] == 1);
  CHECK(sys.get("/operations/" + op["id"].get<std::string>()).status == 404);
}

// Issue 15, items 3 and 4: what an operation and the read model say agrees
// with what the service recorded, whatever the workers went through.
namespace {

size_t count_in(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// users.db: id -> the user's representation, as the worker builds it.
std::map<std::string, json> users_in_db(System& sys) {
  SQLite::Database db(sys.data_dir() + "/users.db", SQLite::OPEN_READONLY);
  db.setBusyTimeout(5000);
  SQLite::Statement st(db, "SELECT id, email, name, created_at, updated_at FROM users");
  std::map<std::string, json> out;
  while (st.executeStep()) {
    out[st.getColumn(0).getString()] = json{{"id", st.getColumn(0).getString()},
                                            {"email", st.getColumn(1).getString()},
                                            {"name", st.getColumn(2).getString()},
                                            {"created_at", st.getColumn(3).getString()},
                                            {"updated_at", st.getColumn(4).getString()}};
  }
  return out;
}

// Every create's final state agrees with users.db: completed if and only if
// the user exists there. Fills *why with the first disagreement.
bool creates_agree(System& sys, const std::vector<json>& accepted, std::string* why) {
  auto users = users_in_db(sys);
  for (const json& op : accepted) {
    auto now = sys.get("/operations/" + op["id"].get<std::string>()).json;
    std::string user = op["resource"].get<std::string>().substr(7);
    bool exists = users.count(user) > 0;
    if ((now["state"] == "completed") != exists) {
      *why = "operation " + now.dump() + " but the user " + (exists ? "exists" : "does not exist");
      return false;
    }
  }
  return true;
}

// Every worker has the tracker's subscription, and the daemon has its
// credit: a command goes to any of them from now on (docs/protocol.md §4a).
void wait_until_subscribed(System& sys, size_t workers) {
  REQUIRE(eventually([&] { return count_in(slurp(sys.data_dir() + "/worker.log"), "tracker subscribed") >= workers; }));
  REQUIRE(eventually([&] { return metric(sys, "asyncops_worker_connections") >= static_cast<int64_t>(workers); }));
}

// Once `workers` workers are subscribed, stops the first (SIGSTOP): it keeps
// what it was sent and answers nothing until SIGCONT.
Process& stop_first_worker(System& sys, size_t workers) {
  wait_until_subscribed(sys, workers);
  Process& stopped = sys.workers()[0];
  stopped.signal(SIGSTOP);
  return stopped;
}

// Creates n users, PREFIX0@example.com and on, all named name, and returns
// their accepted operations.
std::vector<json> create_users(System& sys, int n, const std::string& prefix, const std::string& name) {
  std::vector<json> accepted;
  for (int i = 0; i < n; ++i) accepted.push_back(sys.create_user(prefix + std::to_string(i) + "@example.com", name));
  return accepted;
}

// The worker with this pid has reported an empty hand twice since now.
bool idle(System& sys, pid_t pid) {
  int seen = 0;
  json last;
  bool ok = eventually([&] {
    last = sys.get("/workers").json;
    for (auto& w : last["items"]) {
      if (w["pid"] != pid) continue;
      seen = w["in_flight"] == 0 && w["age_ms"].get<int64_t>() < 1000 ? seen + 1 : 0;
    }
    if (seen < 2) std::this_thread::sleep_for(std::chrono::milliseconds(250));  // one heartbeat
    return seen >= 2;
  }, std::chrono::seconds(30));
  if (!ok) UNSCOPED_INFO("pid " << pid << " not idle in " << last.dump());
  return ok;
}

}  // namespace

TEST_CASE("a worker stopped past its lease and attempts: every final state agrees with users.db", "[reliability][fence]") {
  System sys(0, {"--lease", "1s", "--backoff", "100ms", "--max-attempts", "2"});
  sys.start_worker();
  stop_first_worker(sys, 1);
  // The stopped worker is the only one with credit: it is sent both
  // attempts of each of these that is redelivered before the live worker
  // starts, and they end worker_timeout while it still holds them. The live
  // worker starts once a second attempt went out (within about 1.1 s:
  // lease and backoff); the stopped worker's credit lasts 3 s after its
  // last ready. (With both workers up from the start, the dispatcher sends
  // to the one with the most free credit, so which worker got an attempt
  // depended on how busy the live one was at that moment.)
  std::vector<json> accepted = create_users(sys, 20, "stop", "S");
  auto redelivered = [&sys](const json& op) {
    auto h = sys.get("/operations/" + op["id"].get<std::string>() + "/history");
    for (const json& e : h.json["items"]) {
      if (e["kind"] == "redelivered") return true;
    }
    return false;
  };
  REQUIRE(eventually([&] { return std::any_of(accepted.begin(), accepted.end(), redelivered); },
                     std::chrono::seconds(20)));
  sys.start_worker();
  wait_until_subscribed(sys, 2);
  for (json& op : create_users(sys, 100, "live", "S")) accepted.push_back(std::move(op));
  Process& stopped = sys.workers()[0];
  INFO(sys.logs());
  size_t timed_out = 0;
  for (const json& op : accepted) {
    auto done = sys.wait_terminal(op["id"], 60);
    REQUIRE(done["done"] == true);
    timed_out += done["code"] == "worker_timeout";
  }
  REQUIRE(timed_out > 0);
  stopped.signal(SIGCONT);
  std::string why;
  CHECK(eventually([&] { return creates_agree(sys, accepted, &why); }, std::chrono::seconds(30)));
  INFO(why);
  REQUIRE(idle(sys, stopped.pid()));  // it has handled all it held
  CHECK(creates_agree(sys, accepted, &why));
  // A give-up that stands is recorded as such in the service's dedupe table.
  SQLite::Database db(sys.data_dir() + "/users.db", SQLite::OPEN_READONLY);
  for (const json& op : accepted) {
    auto now = sys.get("/operations/" + op["id"].get<std::string>()).json;
    if (now["code"] != "worker_timeout") continue;
    SQLite::Statement st(db, "SELECT event FROM handled WHERE request_id = ?");
    st.bind(1, op["id"].get<std::string>());
    if (st.executeStep()) CHECK(json::parse(st.getColumn(0).getString())["code"] == "worker_timeout");
  }
}

TEST_CASE("a worker that missed the fence: its late outcome supersedes worker_timeout", "[reliability][fence]") {
  // The worker's events reach the daemon through a link that is cut: it
  // does the work (its claims are granted on the commands socket), but the
  // daemon hears nothing of it and gives up. (A claim fences commands that
  // have not started, so only work already done can come late.) ZeroMQ
  // heartbeats are off so that the cut link holds the outcomes instead of
  // being closed.
  int events = free_port();
  System sys(0, {"--events", tcp(events), "--lease", "500ms", "--backoff", "50ms", "--max-attempts", "2",
                 "--zmq-heartbeat", "0"});
  asyncops::test::TcpProxy link("127.0.0.1", events);
  REQUIRE(link.start());
  Process worker({ASYNCOPS_WORKER_BIN, "--data-dir", sys.data_dir(), "--heartbeat-ms", "200", "--events",
                  tcp(link.port()), "--control", "-", "--zmq-heartbeat", "0"},
                 sys.data_dir() + "/worker.log");
  wait_until_subscribed(sys, 1);
  link.cut();
  std::vector<json> accepted = create_users(sys, 10, "late", "L");
  INFO(sys.logs());
  for (const json& op : accepted) {
    auto done = sys.wait_terminal(op["id"], 30);
    REQUIRE(done["code"] == "worker_timeout");
  }
  link.restore();
  for (const json& op : accepted) {
    std::string id = op["id"];
    CHECK(eventually([&] { return sys.get("/operations/" + id).json["state"] == "completed"; }));
    auto kinds = history_kinds(sys, id);
    CHECK(kinds.back() == "superseded");
    CHECK(std::count(kinds.begin(), kinds.end(), "failed") == 1);
    CHECK(sys.get(op["resource"]).status == 200);
  }
  CHECK(count_users(sys) == 10);
}

TEST_CASE("2000 concurrent PUTs on 40 users under worker kills: the read model equals users.db", "[reliability][version]") {
  System sys(0, {"--lease", "1s", "--backoff", "100ms", "--max-attempts", "20"});
  for (int i = 0; i < 3; ++i) sys.start_worker();
  std::vector<std::string> users;
  {
    std::vector<json> created;
    for (int i = 0; i < 40; ++i) created.push_back(sys.create_user("put" + std::to_string(i) + "@example.com", "P"));
    for (const json& op : created) {
      REQUIRE(sys.wait_terminal(op["id"], 60)["state"] == "completed");
      users.push_back(op["resource"]);
    }
  }
  std::mutex m;
  std::vector<std::string> accepted;
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client c(sys.url());
      c.set_read_timeout(60);
      for (int i = next++; i < 2000; i = next++) {
        const std::string& user = users[static_cast<size_t>(i * 7 + t) % users.size()];
        auto r = c.Put(user, json{{"name", "n" + std::to_string(i)}}.dump(), "application/json");
        if (r && r->status == 202) {
          std::lock_guard<std::mutex> lock(m);
          accepted.push_back(json::parse(r->body)["id"]);
        }
      }
    });
  }
  // Kill a worker with commands in hand a few times while the PUTs run,
  // and start another in its place, as `asyncops up` would.
  for (int kill = 0; kill < 4; ++kill) {
    size_t target = 0;
    REQUIRE(eventually([&] {
      std::lock_guard<std::mutex> lock(m);
      return accepted.size() >= static_cast<size_t>(300 * (kill + 1)) || next >= 2000;
    }, std::chrono::seconds(60)));
    for (size_t i = 0; i < sys.workers().size(); ++i) {
      if (sys.workers()[i].running()) target = i;
    }
    sys.workers()[target].signal(SIGKILL);
    sys.workers()[target].wait(std::chrono::seconds(10));
    sys.start_worker();
  }
  for (auto& t : clients) t.join();
  INFO(sys.logs());
  REQUIRE(accepted.size() == 2000);
  for (const std::string& id : accepted) {
    auto done = sys.wait_terminal(id, 60);
    REQUIRE(done["done"] == true);
    CHECK(done["state"] == "completed");
  }
  // Row for row: what GET serves is what the service holds.
  auto rows = users_in_db(sys);
  REQUIRE(rows.size() == users.size());
  size_t differ = 0;
  for (const std::string& path : users) {
    auto served = sys.get(path);
    REQUIRE(served.status == 200);
    const json& row = rows.at(path.substr(7));
    if (served.json != row) {
      ++differ;
      UNSCOPED_INFO("read model " << served.json.dump() << "\nusers.db   " << row.dump());
    }
  }
  CHECK(differ == 0);
}
