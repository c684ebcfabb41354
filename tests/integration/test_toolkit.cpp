// The operator toolkit: version, daemon/worker pass-through, stats, the
// store commands, and configuration precedence (file < env < flag).
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {
size_t count_lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

// A config file of the given text, and ASYNCOPS_CONFIG pointing at it so
// that the user's own file never leaks into a test.
struct ConfigFixture {
  TempDir dir;
  std::string path = dir.path + "/asyncops.conf";
  explicit ConfigFixture(const std::string& text) { std::ofstream(path) << text; }
  std::map<std::string, std::string> env(std::map<std::string, std::string> more = {}) const {
    more["ASYNCOPS_CONFIG"] = path;
    return more;
  }
};

std::string source_of(const json& settings, const std::string& key, std::string* value = nullptr) {
  for (const auto& s : settings["settings"]) {
    if (s["key"] == key) {
      if (value) *value = s["value"];
      return s["source"];
    }
  }
  return "";
}
}  // namespace

TEST_CASE("version prints the version, as text and as JSON", "[toolkit]") {
  auto text = run_cli({"version"});
  CHECK(text.exit_code == 0);
  CHECK(text.out == "asyncops 0.1.0\n");
  auto j = run_cli({"version", "-o", "json"});
  CHECK(j.exit_code == 0);
  CHECK(json::parse(j.out)["version"] == "0.1.0");
}

TEST_CASE("daemon and worker run the sibling programs with the arguments passed through", "[toolkit]") {
  auto d = run_cli({"daemon", "--version"});
  CHECK(d.exit_code == 0);
  CHECK(d.out.find("asyncopsd 0.1.0") != std::string::npos);
  auto w = run_cli({"worker", "--version"});
  CHECK(w.exit_code == 0);
  CHECK(w.out.find("asyncops-worker 0.1.0") != std::string::npos);
  auto help = run_cli({"daemon", "--help"});
  CHECK(help.out.find("--max-attempts") != std::string::npos);
}

TEST_CASE("stats and the store commands read the file, with stable JSON", "[toolkit][store]") {
  System sys(1);
  auto ok = sys.create_user("s1@example.com", "S");
  auto dup = sys.create_user("s1@example.com", "T");
  REQUIRE(sys.wait_terminal(ok["id"])["state"] == "completed");
  REQUIRE(sys.wait_terminal(dup["id"])["state"] == "rejected");
  const std::string dd = sys.data_dir();

  auto stats = run_cli({"stats", "--data-dir", dd, "-o", "json"});
  INFO(stats.err);
  REQUIRE(stats.exit_code == 0);
  auto s = json::parse(stats.out);
  CHECK(s["total"] == 2);
  CHECK(s["backlog"] == 0);
  CHECK(s["by_state"]["completed"] == 1);
  CHECK(s["by_state"]["rejected"] == 1);
  CHECK(s["by_state"]["pending"] == 0);
  CHECK(s["by_command"]["create_user"]["total"] == 2);
  CHECK(s["oldest_pending"].is_null());
  CHECK(s["created_last_1m"] == 2);
  CHECK(s["rate_1m_per_second"].get<double>() > 0);

  auto info = run_cli({"store", "--data-dir", dd, "info", "--json"});
  REQUIRE(info.exit_code == 0);
  auto i = json::parse(info.out);
  CHECK(i["operations"] == 2);
  CHECK(i["history"].get<int>() >= 6);
  CHECK(i["schema_version"] == "1");
  CHECK(i["db_bytes"].get<int64_t>() > 0);
  CHECK(i["path"] == dd + "/asyncops.db");

  auto ops = run_cli({"store", "--data-dir", dd, "ops", "--state", "rejected", "-o", "json"});
  REQUIRE(ops.exit_code == 0);
  auto items = json::parse(ops.out)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["id"] == dup["id"]);
  CHECK(items[0]["code"] == "email_in_use");
  auto jsonl = run_cli({"store", "--data-dir", dd, "ops", "-o", "jsonl"});
  CHECK(count_lines(jsonl.out) == 2);

  auto hist = run_cli({"store", "--data-dir", dd, "history", ok["id"], "-o", "json"});
  REQUIRE(hist.exit_code == 0);
  auto h = json::parse(hist.out)["history"];
  REQUIRE(h.size() >= 2);
  CHECK(h.front()["kind"] == "accepted");
  CHECK(h.back()["state"] == "completed");
  auto missing = run_cli({"store", "--data-dir", dd, "history", "nope"});
  CHECK(missing.exit_code == 1);
  CHECK(count_lines(missing.err) == 1);

  auto exp = run_cli({"store", "--data-dir", dd, "export"});
  REQUIRE(exp.exit_code == 0);
  REQUIRE(count_lines(exp.out) == 2);
  auto first = json::parse(exp.out.substr(0, exp.out.find('\n')));
  CHECK(first["id"] == ok["id"]);  // oldest first
  CHECK(first["history"].front()["kind"] == "accepted");

  auto check = run_cli({"store", "--data-dir", dd, "check"});
  INFO(check.err);
  CHECK(check.exit_code == 0);
  CHECK(check.out == "ok\n");

  // vacuum refuses while the daemon holds its pid lock, and works after.
  auto refused = run_cli({"store", "--data-dir", dd, "vacuum"});
  CHECK(refused.exit_code == 1);
  CHECK(count_lines(refused.err) == 1);
  CHECK(refused.err.find("running") != std::string::npos);
  sys.stop_daemon(SIGTERM);
  auto vac = run_cli({"store", "--data-dir", dd, "vacuum", "-o", "json"});
  INFO(vac.err);
  CHECK(vac.exit_code == 0);
  CHECK(json::parse(vac.out)["bytes_after"].get<int64_t>() > 0);
}

TEST_CASE("store check reports each broken invariant on one line and exits 1", "[toolkit][store]") {
  TempDir dir;
  {
    System sys(1);
    auto op = sys.create_user("c1@example.com", "C");
    sys.wait_terminal(op["id"]);
    sys.stop_daemon(SIGTERM);
    SQLite::Database db(sys.data_dir() + "/asyncops.db", SQLite::OPEN_READWRITE);
    db.exec("INSERT INTO history(op_seq, kind, state, at) VALUES (999, 'processing', 'processing', 1)");
    db.exec("UPDATE operations SET code = NULL");
    auto r = run_cli({"store", "--data-dir", sys.data_dir(), "check", "-o", "json"});
    CHECK(r.exit_code == 1);
    CHECK(count_lines(r.err) == 2);
    CHECK(r.err.find("no operation with seq 999") != std::string::npos);
    CHECK(r.err.find("without a code") != std::string::npos);
    CHECK(json::parse(r.out)["ok"] == false);
  }
  auto none = run_cli({"store", "--data-dir", dir.path, "info"});
  CHECK(none.exit_code == 1);
  CHECK(count_lines(none.err) == 1);
}

TEST_CASE("CLI configuration: file < ASYNCOPS_URL < --url", "[toolkit][config]") {
  System sys(0);
  ConfigFixture cfg("# test\n[cli]\nurl = " + sys.url() + "\noutput = json\n");
  const std::string dead = "http://127.0.0.1:1";
  // The file alone: its url and output are used.
  auto file = run_cli({"list"}, cfg.env());
  INFO(file.err);
  CHECK(file.exit_code == 0);
  CHECK(json::parse(file.out).contains("items"));
  // The environment beats the file.
  CHECK(run_cli({"list"}, cfg.env({{"ASYNCOPS_URL", dead}})).exit_code == 6);
  // The flag beats both.
  CHECK(run_cli({"--url", sys.url(), "list"}, cfg.env({{"ASYNCOPS_URL", dead}})).exit_code == 0);

  auto shown = run_cli({"config", "-o", "json"}, cfg.env({{"ASYNCOPS_URL", dead}}));
  REQUIRE(shown.exit_code == 0);
  auto j = json::parse(shown.out);
  CHECK(j["config_file"] == cfg.path);
  CHECK(j["config_file_found"] == true);
  std::string url;
  CHECK(source_of(j, "url", &url) == "env");
  CHECK(url == dead);
  CHECK(source_of(j, "output") == "flag");
  auto from_file = json::parse(run_cli({"config"}, cfg.env()).out);  // output = json from the file
  CHECK(source_of(from_file, "url") == "file");
  CHECK(source_of(from_file, "output") == "file");
}

TEST_CASE("a bad config file is one line naming the key: exit 2 for the CLI, 1 for the daemon", "[toolkit][config]") {
  ConfigFixture unknown("[cli]\nurll = http://x\n");
  auto r = run_cli({"version"}, unknown.env());
  CHECK(r.exit_code == 2);
  CHECK(count_lines(r.err) == 1);
  CHECK(r.err.find("'urll'") != std::string::npos);

  ConfigFixture bad("[cli]\noutput = yaml\n");
  auto b = run_cli({"version"}, bad.env());
  CHECK(b.exit_code == 2);
  CHECK(b.err.find("output") != std::string::npos);

  ConfigFixture daemon_bad("[daemon]\nmax_attempts = 0\n");
  auto d = run_cli({"daemon", "--print-config"}, daemon_bad.env());
  CHECK(d.exit_code == 1);
  CHECK(count_lines(d.err) == 1);
  CHECK(d.err.find("max_attempts") != std::string::npos);
  ConfigFixture daemon_unknown("[daemon]\nlisten_on = 1.2.3.4:5\n");
  auto u = run_cli({"daemon", "--print-config"}, daemon_unknown.env());
  CHECK(u.exit_code == 1);
  CHECK(u.err.find("'listen_on'") != std::string::npos);
}

TEST_CASE("daemon configuration: file < ASYNCOPS_* < flag, shown by config --daemon", "[toolkit][config]") {
  ConfigFixture cfg("[daemon]\nmax_attempts = 7\nlog_format = json\nlease = 9s\n");
  auto value = [&](const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                   const std::string& key, std::string* source) {
    auto r = run_cli(args, cfg.env(env));
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    std::string v;
    *source = source_of(json::parse(r.out), key, &v);
    return v;
  };
  std::string src;
  CHECK(value({"config", "--daemon", "-o", "json"}, {}, "max_attempts", &src) == "7");
  CHECK(src == "file");
  CHECK(value({"config", "--daemon", "-o", "json"}, {}, "lease", &src) == "9s");
  CHECK(value({"config", "--daemon", "-o", "json"}, {{"ASYNCOPS_MAX_ATTEMPTS", "8"}}, "max_attempts", &src) == "8");
  CHECK(src == "env");
  CHECK(value({"daemon", "--print-config", "--max-attempts", "9"}, {{"ASYNCOPS_MAX_ATTEMPTS", "8"}}, "max_attempts",
              &src) == "9");
  CHECK(src == "flag");
  CHECK(value({"config", "--daemon", "-o", "json"}, {}, "max_backlog", &src) == "50000");
  CHECK(src == "default");

  // And the daemon really runs with the file's settings.
  System sys(0, {"--config", cfg.path});
  auto metrics = sys.get("/healthz");
  CHECK(metrics.status == 200);
  CHECK(sys.logs().find("{\"") != std::string::npos);  // log_format = json from the file
}

TEST_CASE("one -o rule: token list, token add, keygen and workers honour -o, and collections are {items}", "[toolkit][output]") {
  TempDir dir;
  auto added = run_cli({"-o", "json", "token", "add", "--principal", "ann", "--data-dir", dir.path});
  REQUIRE(added.exit_code == 0);
  auto a = json::parse(added.out);
  CHECK(a["principal"] == "ann");
  CHECK(a["role"] == "submitter");
  CHECK(a["token"].get<std::string>().rfind("aot_", 0) == 0);
  CHECK(a["hash"].get<std::string>().rfind("sha256:", 0) == 0);
  auto listed = run_cli({"token", "list", "--data-dir", dir.path, "-o", "json"});
  REQUIRE(listed.exit_code == 0);
  auto l = json::parse(listed.out);
  REQUIRE(l["items"].size() == 1);
  CHECK(l["items"][0]["hash"] == a["hash"]);
  auto lines = run_cli({"token", "list", "--data-dir", dir.path, "-o", "jsonl"});
  CHECK(json::parse(lines.out)["principal"] == "ann");
  auto keys = run_cli({"keygen", "--json"});
  REQUIRE(keys.exit_code == 0);
  CHECK(json::parse(keys.out)["public_key"].get<std::string>().size() == 40);
  CHECK(run_cli({"keygen"}).out.rfind("# ZeroMQ CURVE key pair", 0) == 0);  // the key file format stays

  System sys(1);
  CHECK(eventually([&] { return sys.get("/workers").json["items"].size() == 1; }));
  auto w = run_cli({"--url", sys.url(), "workers", "-o", "json"});
  CHECK(json::parse(w.out)["items"].size() == 1);
  auto ops = run_cli({"--url", sys.url(), "list", "-o", "json"});
  CHECK(json::parse(ops.out).contains("items"));
}

TEST_CASE("tail -o table into a pipe prints one table line per change", "[toolkit][output]") {
  System sys;
  std::string out = sys.data_dir() + "/tail.out";
  Process tail({ASYNCOPS_CLI_BIN, "--url", sys.url(), "tail", "-o", "table"}, out);
  auto op = sys.create_user("tt@example.com", "T");
  std::string id = op["id"];
  // tail may connect after the operation finished: keep creating until one shows.
  REQUIRE(eventually([&] {
    std::string text = slurp(out);
    if (text.find("completed") != std::string::npos) return true;
    sys.create_user("tt" + std::to_string(std::rand()) + "@example.com", "T");
    return false;
  }));
  std::istringstream in(slurp(out));
  std::string line;
  std::getline(in, line);
  CHECK(line.front() != '{');
  CHECK(line.find("create_user") != std::string::npos);
  tail.signal(SIGINT);
  tail.wait(std::chrono::seconds(10));
}

TEST_CASE("typos and bad values get one line that says what was meant", "[toolkit][typo]") {
  auto typo = run_cli({"lsit", "--state", "rejected"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.err == "asyncops: unknown command 'lsit'; did you mean 'asyncops list'? (asyncops help lists them)\n");
  auto help = run_cli({"help", "list"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("--state") != std::string::npos);
  CHECK(run_cli({"help"}).out.find("submit") != std::string::npos);
  CHECK(run_cli({"help", "store", "prune"}).out.find("--older-than") != std::string::npos);
  CHECK(run_cli({"help", "lsit"}).exit_code == 2);
  // Each exits with its code and one short line on stderr that says this.
  struct Refused {
    std::vector<std::string> args;
    int exit_code;
    std::string says;
  };
  const Refused refused[] = {
      {{"store", "prnue"}, 2, "did you mean 'asyncops store prune'?"},
      {{"list", "--limit", "abc"}, 2, "'abc' is not a whole number from 1 to 1000"},
      {{"watch", "x", "--timeout", "-1"}, 2, "number of seconds"},
      {{"--url", "http://127.0.0.1:1", "list"}, 6, "is the daemon running? `asyncops up`, or set --url / ASYNCOPS_URL"},
  };
  for (const Refused& r : refused) {
    auto got = run_cli(r.args);
    INFO(got.err);
    CHECK(got.exit_code == r.exit_code);
    CHECK(got.err.find(r.says) != std::string::npos);
    CHECK(got.err.size() < 160);
  }
  // asyncopsd: usage errors are the documented 2, not CLI11's 105/109/114.
  CHECK(run_cli({"daemon", "--no-such-flag"}).exit_code == 2);
  CHECK(run_cli({"daemon", "--listen"}).exit_code == 2);
  CHECK(run_cli({"daemon", "--max-attempts", "many"}).exit_code == 2);
}

TEST_CASE("a URL that is not asyncops is named as such", "[toolkit][typo]") {
  httplib::Server other;
  other.Get(".*", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("not found", "text/plain");
  });
  int port = other.bind_to_any_port("127.0.0.1");
  std::thread t([&] { other.listen_after_bind(); });
  auto r = run_cli({"--url", "http://127.0.0.1:" + std::to_string(port), "get", "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"});
  other.stop();
  t.join();
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("is not an asyncops daemon (GET /healthz answered 404)") != std::string::npos);
}

TEST_CASE("tokens: the first one warns that it locks out tokenless use, a 401 names --token, a new token works at once", "[toolkit][access]") {
  System sys(0);
  auto first = run_cli({"token", "add", "--principal", "ops", "--role", "admin", "--data-dir", sys.data_dir()});
  REQUIRE(first.exit_code == 0);
  CHECK(first.err.find("first token") != std::string::npos);
  // Tokenless requests are refused once the daemon's periodic check (about a
  // second) sees that tokens exist.
  CliResult refused;
  CHECK(eventually([&] {
    refused = run_cli({"--url", sys.url(), "list"});
    return refused.exit_code == 1;
  }));
  CHECK(refused.err.find("--token or ASYNCOPS_TOKEN") != std::string::npos);
  // Bug 3: a token added now works as soon as `token add` returns (the daemon
  // re-reads the file on an unknown token), every time.
  for (int i = 0; i < 5; ++i) {
    auto added = run_cli({"token", "add", "--principal", "ann" + std::to_string(i), "--data-dir", sys.data_dir()});
    REQUIRE(added.exit_code == 0);
    CHECK(added.err.empty());  // only the first token warns
    std::string token = added.out.substr(added.out.rfind('\n', added.out.size() - 2) + 1);
    token.pop_back();
    auto used = run_cli({"--url", sys.url(), "--token", token, "list"});
    INFO(used.err);
    CHECK(used.exit_code == 0);
  }
}

TEST_CASE("stats asks the daemon's GET /stats when one is known, else reads the file", "[toolkit][stats]") {
  System sys(1);
  auto ok = sys.create_user("st1@example.com", "S");
  REQUIRE(sys.wait_terminal(ok["id"])["state"] == "completed");
  const std::string dd = sys.data_dir();
  TempDir runtime;  // no pointer of another `asyncops up` leaks in
  std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", runtime.path}};

  auto direct = sys.get("/stats");
  REQUIRE(direct.status == 200);
  CHECK(direct.json["counts"]["completed"] == 1);
  CHECK(direct.json["rates"]["window_s"] == 10);
  CHECK(direct.json["rates"]["accepted"].get<double>() > 0);

  // --url: over HTTP, saying where from.
  auto http = run_cli({"--url", sys.url(), "stats", "-o", "json"}, env);
  INFO(http.err);
  REQUIRE(http.exit_code == 0);
  auto h = json::parse(http.out);
  CHECK(h["url"] == sys.url());
  CHECK_FALSE(h.contains("store"));
  CHECK(h["counts"]["completed"] == 1);
  CHECK(h["by_command"]["create_user"]["total"] == 1);
  // --data-dir alone finds the running daemon through its URL file.
  auto found = run_cli({"stats", "--data-dir", dd, "-o", "json"}, env);
  REQUIRE(found.exit_code == 0);
  CHECK(json::parse(found.out)["url"] == sys.url());
  auto table = run_cli({"--url", sys.url(), "stats"}, env);
  CHECK(table.exit_code == 0);
  CHECK(table.out.find("daemon") == 0);
  CHECK(table.out.find("rates, last 10s") != std::string::npos);

  sys.stop_daemon(SIGTERM);
  // The daemon is gone: the file answers, with the same document.
  auto file = run_cli({"stats", "--data-dir", dd, "-o", "json"}, env);
  INFO(file.err);
  REQUIRE(file.exit_code == 0);
  auto f = json::parse(file.out);
  CHECK(f["store"] == dd + "/asyncops.db");
  CHECK(f["counts"] == h["counts"]);
  CHECK(f["rates"].contains("completed"));
  // A named daemon that does not answer is an error (exit 6), not the file.
  auto gone = run_cli({"--url", sys.url(), "stats", "--data-dir", dd}, env);
  CHECK(gone.exit_code == 6);
  CHECK(count_lines(gone.err) == 1);
}

TEST_CASE("store history reads GET /operations/{id}/history when a daemon is known", "[toolkit][store]") {
  System sys(1);
  auto ok = sys.create_user("sh1@example.com", "S");
  REQUIRE(sys.wait_terminal(ok["id"])["state"] == "completed");
  const std::string id = ok["id"], dd = sys.data_dir();
  TempDir runtime;
  std::map<std::string, std::string> env = {{"XDG_RUNTIME_DIR", runtime.path}};

  // Over HTTP, with an id prefix the daemon resolves, and no store file at
  // hand (the data dir named is empty).
  TempDir empty;
  auto http = run_cli({"--url", sys.url(), "store", "--data-dir", empty.path, "history", id.substr(0, 13), "-o", "json"},
                      env);
  INFO(http.err);
  REQUIRE(http.exit_code == 0);
  auto h = json::parse(http.out);
  CHECK(h["id"] == id);
  REQUIRE(h["history"].size() >= 2);
  CHECK(h["history"].front()["kind"] == "accepted");
  CHECK(h["history"].back()["state"] == "completed");
  auto unknown = run_cli({"--url", sys.url(), "store", "history", "0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f"}, env);
  CHECK(unknown.exit_code == 1);
  CHECK(unknown.err.find("404") != std::string::npos);

  sys.stop_daemon(SIGTERM);
  // Found through the data dir only: the daemon is gone, the file answers.
  auto file = run_cli({"store", "--data-dir", dd, "history", id, "-o", "json"}, env);
  INFO(file.err);
  REQUIRE(file.exit_code == 0);
  CHECK(json::parse(file.out)["history"] == h["history"]);
  // Named with --url, it must answer.
  auto gone = run_cli({"--url", sys.url(), "store", "--data-dir", dd, "history", id}, env);
  CHECK(gone.exit_code == 6);
}

TEST_CASE("help --man shows the man pages from the build tree", "[toolkit][man]") {
  if (::access("/usr/bin/man", X_OK) != 0) {
    WARN("man is not installed (apt-get install man-db): skipped");
    return;
  }
  std::map<std::string, std::string> env = {{"MANPAGER", "cat"}, {"PAGER", "cat"}, {"MANWIDTH", "80"}};
  // man justifies its lines, so words may be apart by more than one space.
  auto words = [](const std::string& text) {
    std::string out;
    for (char c : text) {
      if (c == ' ' || c == '\n') {
        if (!out.empty() && out.back() != ' ') out.push_back(' ');
      } else {
        out.push_back(c);
      }
    }
    return out;
  };
  auto cli = run_cli({"help", "--man"}, env);
  INFO(cli.err);
  CHECK(cli.exit_code == 0);
  CHECK(words(cli.out).find("submit commands to asyncopsd") != std::string::npos);
  auto daemon = run_cli({"help", "--man", "asyncopsd"}, env);
  CHECK(daemon.exit_code == 0);
  CHECK(words(daemon.out).find("the asyncops daemon") != std::string::npos);
  auto none = run_cli({"help", "--man", "nope"}, env);
  CHECK(none.exit_code == 2);
  CHECK(count_lines(none.err) == 1);
}

namespace {
// What systemd sees of a Type=notify service: the datagrams on NOTIFY_SOCKET.
struct NotifySocket {
  int fd = -1;
  std::string path;
  explicit NotifySocket(const std::string& p) : path(p) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind " + path);
  }
  ~NotifySocket() { ::close(fd); }
  // The next datagram, or "" after timeout_ms.
  std::string next(int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return "";
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
};
}  // namespace

TEST_CASE("under systemd (NOTIFY_SOCKET) asyncopsd sends READY=1 once it serves and STOPPING=1 at the stop",
          "[toolkit][systemd]") {
  TempDir dir;
  NotifySocket notify(dir.path + "/notify");
  Process d({ASYNCOPSD_BIN, "--data-dir", dir.path, "--listen", "127.0.0.1:0"}, dir.path + "/daemon.log",
            {{"NOTIFY_SOCKET", notify.path}});
  std::string ready = notify.next(30000);
  INFO(slurp(dir.path + "/daemon.log"));
  REQUIRE(ready.find("READY=1") != std::string::npos);
  // Ready means serving: the URL it names answers at once.
  auto at = ready.find("STATUS=serving ");
  REQUIRE(at != std::string::npos);
  std::string url = ready.substr(at + 15);
  url = url.substr(0, url.find('\n'));
  CHECK(url == slurp(dir.path + "/asyncopsd.url").substr(0, url.size()));
  httplib::Client client(url);
  auto health = client.Get("/readyz");
  REQUIRE(health);
  CHECK(health->status == 200);
  d.signal(SIGTERM);
  CHECK(notify.next(30000).find("STOPPING=1") != std::string::npos);
  CHECK(d.wait(std::chrono::seconds(20)) != -1);
}
