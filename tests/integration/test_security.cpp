// Issue 7, end to end on the real binaries: tokens, the loopback rule, HTTPS,
// CURVE and data-dir modes. (tests/unit/test_access.cpp tests daemon/access.h.)
#include <catch2/catch.hpp>

#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <sstream>
#include <future>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "harness.h"
#include "tests/loopback.h"
#include "shared/envelope.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

httplib::Headers bearer(const std::string& t) { return {{"Authorization", "Bearer " + t}}; }

// Reads an SSE stream until stop(id) is true for an event's operation id
// (or the 10 s idle timeout), returning the ids of the events seen. The
// stream is ordered by sequence, so whatever came before that event is in.
std::vector<std::string> stream_ids(const std::string& url, const std::string& path, const std::string& token,
                                    const std::function<bool(const std::string&)>& stop, int* status) {
  std::vector<std::string> ids;
  httplib::Client c(url);
  c.set_read_timeout(10);
  std::string buf;
  bool done = false;
  auto r = c.Get(
      path, bearer(token),
      [&](const httplib::Response& res) {
        *status = res.status;
        return true;
      },
      [&](const char* d, size_t n) {
        // The rest of what came with the last event is read too.
        feed_sse(buf, d, n, [&](const SseBlock& e) {
          auto j = json::parse(e.data, nullptr, false);
          if (!j.is_object() || !j.contains("id")) return true;
          ids.push_back(j["id"]);
          if (stop(j["id"])) done = true;
          return true;
        });
        return !done;
      });
  if (r && *status == 0) *status = r->status;
  return ids;
}

std::vector<std::string> stream_ids(const std::string& url, const std::string& path, const std::string& token,
                                    const std::string& until, int* status) {
  return stream_ids(url, path, token, [&until](const std::string& id) { return id == until; }, status);
}

int sse_clients(System& sys, const std::string& token) {
  auto body = sys.get("/metrics", bearer(token)).body;
  auto pos = body.find("\nasyncops_sse_clients ");
  return pos == std::string::npos ? -1 : std::stoi(body.substr(pos + 22));
}

}  // namespace

TEST_CASE("token A cannot see B's operation anywhere, and an admin sees both", "[access]") {
  System sys;
  std::string a = add_token(sys.data_dir(), "alice", "submitter");
  std::string b = add_token(sys.data_dir(), "bob", "submitter");
  std::string root = add_token(sys.data_dir(), "root", "admin");
  auto list = run_cli({"token", "list", "--data-dir", sys.data_dir()});
  CHECK(list.out.find("alice") != std::string::npos);
  CHECK(list.out.find(a) == std::string::npos);  // only hashes are stored
  // The daemon picks the file up within a second.
  REQUIRE(eventually([&] { return sys.get("/operations").status == 401; }, std::chrono::seconds(5)));
  auto anon = sys.get("/operations");
  CHECK(anon.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(anon.header("Content-Type") == "application/problem+json");

  // Bob's global stream is open before alice submits; it is read until
  // bob's own later operation, so all of alice's changes came before.
  int b_status = 0;
  std::vector<std::string> b_seen;
  REQUIRE(sse_clients(sys, root) == 0);
  std::promise<std::string> marker_promise;  // bob's own operation, known later
  auto marker_future = marker_promise.get_future().share();
  std::thread bob_reader([&] {
    b_seen = stream_ids(sys.url(), "/events", b, [&](const std::string& id) {
      return marker_future.wait_for(std::chrono::seconds(0)) == std::future_status::ready && id == marker_future.get();
    }, &b_status);
  });
  REQUIRE(eventually([&] { return sse_clients(sys, root) == 1; }));
  auto created = sys.send("POST", "/users", R"({"email":"al@example.com","name":"Al"})", "application/json",
                          bearer(a));
  REQUIRE(created.status == 202);
  std::string id = created.json["id"];
  REQUIRE(sys.get("/operations/" + id + "?wait=10", bearer(a)).json["done"] == true);
  auto bobs = sys.send("POST", "/users", R"({"email":"bo@example.com","name":"Bo"})", "application/json", bearer(b));
  REQUIRE(bobs.status == 202);
  marker_promise.set_value(bobs.json["id"].get<std::string>());
  REQUIRE(sys.get("/operations/" + bobs.json["id"].get<std::string>() + "?wait=10", bearer(b)).json["done"] == true);
  bob_reader.join();
  CHECK(b_status == 200);
  CHECK(std::find(b_seen.begin(), b_seen.end(), bobs.json["id"].get<std::string>()) != b_seen.end());
  CHECK(std::find(b_seen.begin(), b_seen.end(), id) == b_seen.end());

  auto done = sys.get("/operations/" + id + "?wait=10", bearer(a));
  CHECK(done.json["state"] == "completed");
  std::string unknown = "01900000-0000-7000-8000-000000000000";
  auto other = sys.get("/operations/" + id, bearer(b));
  auto missing = sys.get("/operations/" + unknown, bearer(b));
  CHECK(other.status == 404);
  CHECK(other.json["code"] == missing.json["code"]);
  CHECK(sys.get("/operations/" + id + "/history", bearer(b)).status == 404);
  CHECK(sys.get("/operations/" + id + "/events", bearer(b)).status == 404);
  auto bob_list = sys.get("/operations", bearer(b)).json["items"];  // his own marker only
  REQUIRE(bob_list.size() == 1);
  CHECK(bob_list[0]["id"] == bobs.json["id"]);
  CHECK(sys.send("POST", "/operations/" + id + "/cancel", "", "application/json", bearer(b)).status == 404);
  CHECK(sys.send("DELETE", "/operations/" + id, "", "application/json", bearer(b)).status == 404);
  // The user resource (read "owner" by default) is alice's alone.
  std::string res = created.header("X-Resource");
  CHECK(sys.get(res, bearer(a)).status == 200);
  CHECK(sys.get(res, bearer(b)).status == 404);
  auto bob_users = sys.get("/users", bearer(b)).json["items"];  // his own user only
  REQUIRE(bob_users.size() == 1);
  CHECK(bob_users[0]["email"] == "bo@example.com");
  CHECK(sys.get(res, bearer(root)).status == 200);
  // Replay of /events from the start hides it too.
  int replay_status = 0;
  // Bob's replay is read up to his own operation, which came after alice's.
  auto replay = stream_ids(sys.url(), "/events?last_event_id=0", b, bobs.json["id"], &replay_status);
  CHECK(std::find(replay.begin(), replay.end(), bobs.json["id"].get<std::string>()) != replay.end());
  CHECK(std::find(replay.begin(), replay.end(), id) == replay.end());
  auto replay_a = stream_ids(sys.url(), "/events?last_event_id=0", a, id, &replay_status);
  CHECK(std::find(replay_a.begin(), replay_a.end(), id) != replay_a.end());
  // The CLI, as bob: get fails like an unknown id, list is empty, tail shows nothing of alice's.
  auto g = run_cli({"get", id, "--url", sys.url(), "--token", b});
  CHECK(g.exit_code == 1);
  auto l = run_cli({"list", "--url", sys.url(), "--json"}, {{"ASYNCOPS_TOKEN", b}});
  CHECK(l.exit_code == 0);
  CHECK(l.out.find(id) == std::string::npos);
  auto la = run_cli({"list", "--url", sys.url(), "--json", "--token", a});
  CHECK(la.out.find(id) != std::string::npos);
  CHECK(sys.get("/operations", bearer(root)).json["items"].size() == 2);

  // Revoking takes effect without a restart.
  CHECK(run_cli({"token", "revoke", "alice", "--data-dir", sys.data_dir()}).exit_code == 0);
  CHECK(eventually([&] { return sys.get("/operations", bearer(a)).status == 401; }, std::chrono::seconds(5)));
}

TEST_CASE("bob's PUT and DELETE of alice's user are 404 as for an unknown id, and change nothing",
          "[access][ownership]") {
  System sys;
  std::string a = add_token(sys.data_dir(), "alice", "submitter");
  std::string b = add_token(sys.data_dir(), "bob", "submitter");
  std::string root = add_token(sys.data_dir(), "root", "admin");
  REQUIRE(eventually([&] { return sys.get("/operations").status == 401; }, std::chrono::seconds(5)));
  auto created = sys.send("POST", "/users", R"({"email":"al@example.com","name":"Al"})", "application/json",
                          bearer(a));
  REQUIRE(created.status == 202);
  std::string res = created.header("X-Resource");
  std::string user_id = res.substr(std::string("/users/").size());
  REQUIRE(sys.get("/operations/" + created.json["id"].get<std::string>() + "?wait=10", bearer(a)).json["state"] ==
          "completed");

  std::string unknown_id = "01900000-0000-7000-8000-000000000000";
  auto put = sys.send("PUT", res, R"({"name":"Bob"})", "application/json", bearer(b));
  auto del = sys.send("DELETE", res, "", "application/json", bearer(b));
  auto put_unknown = sys.send("PUT", "/users/" + unknown_id, R"({"name":"Bob"})", "application/json", bearer(b));
  auto del_unknown = sys.send("DELETE", "/users/" + unknown_id, "", "application/json", bearer(b));
  CHECK(put.status == 404);
  CHECK(del.status == 404);
  CHECK(put.header("Content-Type") == "application/problem+json");
  CHECK(put_unknown.status == 404);
  CHECK(del_unknown.status == 404);
  auto same_but_id = [](std::string body, const std::string& id) {
    for (size_t at; (at = body.find(id)) != std::string::npos;) body.replace(at, id.size(), "ID");
    return body;
  };
  CHECK(same_but_id(put.body, user_id) == same_but_id(put_unknown.body, unknown_id));
  CHECK(same_but_id(del.body, user_id) == same_but_id(del_unknown.body, unknown_id));
  CHECK(sys.get("/operations", bearer(b)).json["items"].empty());  // nothing was stored for bob

  // Alice still reads her user as she made it; the service still has it.
  auto mine = sys.get(res, bearer(a));
  REQUIRE(mine.status == 200);
  CHECK(mine.json["name"] == "Al");
  CHECK(mine.json["email"] == "al@example.com");
  CHECK(sys.get(res, bearer(b)).status == 404);
  {
    SQLite::Database db(sys.data_dir() + "/users.db", SQLite::OPEN_READONLY);
    SQLite::Statement st(db, "SELECT name FROM users WHERE id = ?");
    st.bind(1, user_id);
    REQUIRE(st.executeStep());
    CHECK(st.getColumn(0).getString() == "Al");
  }

  // An admin may write it, and alice keeps it.
  auto fixed = sys.send("PUT", res, R"({"name":"Root"})", "application/json", bearer(root));
  REQUIRE(fixed.status == 202);
  REQUIRE(sys.get("/operations/" + fixed.json["id"].get<std::string>() + "?wait=10", bearer(root)).json["state"] ==
          "completed");
  CHECK(sys.get(res, bearer(a)).json["name"] == "Root");
  CHECK(sys.get(res, bearer(b)).status == 404);
}

TEST_CASE("listening on a non-loopback address without tokens is refused at start", "[access]") {
  TempDir dir;
  Process p({ASYNCOPSD_BIN, "--data-dir", dir.path, "--listen", "0.0.0.0:0"}, dir.path + "/log");
  int status = p.wait(std::chrono::seconds(10));
  REQUIRE(status != -1);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 1);
  std::ifstream in(dir.path + "/log");
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(ss.str().find("no API tokens are configured") != std::string::npos);
}

TEST_CASE("without tokens the daemon says it serves loopback clients only", "[access]") {
  System sys(0);
  REQUIRE(eventually([&] { return sys.logs().find("loopback clients only") != std::string::npos; }));
  CHECK(sys.get("/operations").status == 200);  // the harness calls from 127.0.0.1
}

TEST_CASE("the data dir is 0700 and its ipc sockets 0600", "[access]") {
  System sys(1);
  struct stat st {};
  REQUIRE(::stat(sys.data_dir().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  for (const char* name : {"events.ipc", "commands.users.ipc", "control.ipc"}) {
    INFO(name);
    REQUIRE(::stat((sys.data_dir() + "/" + name).c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0077) == 0);
  }
}

TEST_CASE("HTTPS with --tls-cert and --tls-key, trusted by the CLI with --cacert", "[access]") {
  TempDir certs;
  std::string cert = certs.path + "/cert.pem", key = certs.path + "/key.pem";
  std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                    "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " + key + " -out " + cert +
                    " >/dev/null 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  System sys(1, {"--tls-cert", cert, "--tls-key", key});
  REQUIRE(sys.url().rfind("https://", 0) == 0);
  httplib::Client c(sys.url());
  c.set_ca_cert_path(cert.c_str());
  auto r = c.Get("/healthz");
  REQUIRE(r);
  CHECK(r->status == 200);
  httplib::Client untrusting(sys.url());
  CHECK(!untrusting.Get("/healthz"));  // a self-signed certificate is not trusted by default
  auto sub = run_cli({"submit", "POST", "/users", "-d", R"({"email":"t@example.com","name":"T"})", "--wait",
                      "--url", sys.url(), "--cacert", cert});
  INFO(sub.err << sys.logs());
  CHECK(sub.exit_code == 0);
  // An operation's SSE stream over HTTPS (it stays on the I/O threads: an
  // SSL stream does not move to a stream thread) runs to its end.
  auto posted = c.Post("/users", R"({"email":"tls-sse@example.com","name":"T"})", "application/json");
  REQUIRE(posted);
  REQUIRE(posted->status == 202);
  std::string id = nlohmann::json::parse(posted->body)["id"];
  c.set_read_timeout(20);
  auto stream = c.Get("/operations/" + id + "/events");
  REQUIRE(stream);
  CHECK(stream->status == 200);
  CHECK(stream->get_header_value("Content-Type").rfind("text/event-stream", 0) == 0);
  CHECK(stream->body.find("\"state\":\"completed\"") != std::string::npos);
}

namespace {

// Makes s a CURVE client of a server with public key server_public,
// authenticating with the key pair `keys` (as keygen returns it).
void use_curve_keys(zmq::socket_t& s, const std::string& server_public, std::map<std::string, std::string>& keys) {
  s.set(zmq::sockopt::curve_serverkey, server_public);
  s.set(zmq::sockopt::curve_publickey, keys["public-key"]);
  s.set(zmq::sockopt::curve_secretkey, keys["secret-key"]);
}

std::map<std::string, std::string> keygen(const std::string& path) {
  auto r = run_cli({"keygen"});
  if (r.exit_code != 0) throw std::runtime_error("keygen failed: " + r.err);
  std::ofstream(path) << r.out;
  std::map<std::string, std::string> out;
  std::istringstream in(r.out);
  for (std::string k, v; in >> k;) {
    if (k == "#") {
      std::getline(in, v);
      continue;
    }
    in >> v;
    out[k] = v;
  }
  return out;
}

}  // namespace

TEST_CASE("CURVE over tcp: an unknown key neither gets commands nor injects events", "[access][curve]") {
  TempDir keys;
  auto server = keygen(keys.path + "/daemon.key");
  auto good = keygen(keys.path + "/good.key");
  auto rogue = keygen(keys.path + "/rogue.key");
  auto mailer = keygen(keys.path + "/mailer.key");
  REQUIRE(server["public-key"].size() == 40);
  std::ofstream(keys.path + "/allowed") << "# workers\n"
                                        << good["public-key"] << " users\n"
                                        << mailer["public-key"] << " mail  # may serve only the mail service\n";
  std::string events = "tcp://127.0.0.1:" + std::to_string(asyncops::test::free_loopback_port());
  std::string commands = "tcp://127.0.0.1:" + std::to_string(asyncops::test::free_loopback_port());
  std::string control = "tcp://127.0.0.1:" + std::to_string(asyncops::test::free_loopback_port());
  System sys(0, {"--events", events, "--dispatch", commands, "--control", control, "--curve-secret-key-file",
                 keys.path + "/daemon.key", "--curve-allowed-keys", keys.path + "/allowed"});
  auto worker = [&](const std::string& key_file, const std::string& log) {
    return Process({ASYNCOPS_WORKER_BIN, "--data-dir", sys.data_dir() + "/" + log, "--events", events, "--commands",
                    commands, "--control", control, "--heartbeat-ms", "200", "--curve-secret-key-file", key_file,
                    "--curve-server-key", server["public-key"]},
                   sys.data_dir() + "/" + log + ".log");
  };
  // A worker with a key not on the list: no command reaches it.
  auto curve_rejected = [&] {
    auto body = sys.get("/metrics").body;
    auto pos = body.find("\nasyncops_curve_rejected_total ");
    return pos == std::string::npos ? -1 : std::stoll(body.substr(pos + 31));
  };
  Process bad = worker(keys.path + "/rogue.key", "rogue");
  auto op = sys.create_user("c@example.com", "C");
  std::string id = op["id"];
  // Its handshakes are refused (sync on that), so it has no connection on
  // which a command could reach it.
  REQUIRE(eventually([&] { return curve_rejected() >= 2; }));
  CHECK(sys.get("/operations/" + id).json["state"] == "pending");
  // And the refused worker says why, in one line (not "waiting" for ever).
  CHECK(eventually([&] {
    return slurp(sys.data_dir() + "/rogue.log").find("is not on the daemon's --curve-allowed-keys") != std::string::npos;
  }));
  // A publisher with that key cannot complete it either.
  {
    zmq::context_t ctx(1);
    zmq::socket_t pub(ctx, zmq::socket_type::pub);
    use_curve_keys(pub, server["public-key"], rogue);
    pub.set(zmq::sockopt::linger, 0);
    // Read before connect: the refusal of the handshake that connect starts
    // can be counted before the send below, and a refused peer may not try
    // again (ASan CI once read the count after it and waited in vain).
    int64_t before = curve_rejected();
    pub.connect(events);
    asyncops::Event e;
    e.request_id = id;
    e.type = "user_created";
    e.state = asyncops::OpState::completed;
    e.code = "success";
    e.worker = "rogue";
    e.resource = op["resource"];
    e.data = json{{"email", "forged@example.com"}};
    auto f = asyncops::encode(e);
    std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
    zmq::send_multipart(pub, parts, zmq::send_flags::dontwait);
    // The handshake is refused: sync on the refusal, not on time.
    REQUIRE(eventually([&] { return curve_rejected() > before; }));
  }
  INFO(sys.logs());
  CHECK(sys.get("/operations/" + id).json["state"] == "pending");
  auto metrics = sys.get("/metrics").body;
  CHECK(metrics.find("asyncops_curve_rejected_total 0") == std::string::npos);
  CHECK(metrics.find("asyncops_events_applied_total 0") != std::string::npos);
  // An allowed key, but for another service: its event is refused.
  {
    zmq::context_t ctx(1);
    zmq::socket_t pub(ctx, zmq::socket_type::xpub);
    use_curve_keys(pub, server["public-key"], mailer);
    pub.set(zmq::sockopt::linger, 1000);
    pub.connect(events);
    zmq::message_t sub;  // the tracker's subscription: the connection is up
    REQUIRE(eventually([&] { return pub.recv(sub, zmq::recv_flags::dontwait).has_value(); }));
    asyncops::Event e;
    e.request_id = id;
    e.type = "user_created";
    e.state = asyncops::OpState::completed;
    e.resource = op["resource"];
    e.data = json{{"email", "forged@example.com"}};
    auto f = asyncops::encode(e);
    std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
    zmq::send_multipart(pub, parts);
    REQUIRE(eventually([&] {
      return sys.get("/metrics").body.find("\nasyncops_events_rejected_total 1\n") != std::string::npos;
    }));
    CHECK(sys.get("/operations/" + id).json["state"] == "pending");
  }
  // The allowed worker gets it and finishes it.
  Process ok = worker(keys.path + "/good.key", "good");
  CHECK(sys.wait_terminal(id)["state"] == "completed");
}
