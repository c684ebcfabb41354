// Workers on other hosts (issue 18): a link cut without being closed. A TCP
// proxy stands between one worker and the daemon and stops forwarding while
// keeping both sockets open, as an unplugged host or a dropping firewall does.
#include <catch2/catch.hpp>

#include <set>

#include <SQLiteCpp/SQLiteCpp.h>
#include <zmq.hpp>

#include "harness.h"
#include "tests/tools/tcp_proxy.h"

using namespace asyncops::it;
using asyncops::test::TcpProxy;
using nlohmann::json;

namespace {

// The user ids in a worker's users.db.
std::set<std::string> users_in(const std::string& db_path) {
  std::set<std::string> ids;
  SQLite::Database db(db_path, SQLite::OPEN_READONLY);
  SQLite::Statement st(db, "SELECT id FROM users");
  while (st.executeStep()) ids.insert(st.getColumn(0).getString());
  return ids;
}

}  // namespace

TEST_CASE("a cut link: its worker is dropped within seconds, its commands complete elsewhere, none runs twice",
          "[cut][issue18]") {
  int events = free_port(), commands = free_port(), control = free_port();
  System sys(0, {"--events", tcp(events), "--dispatch", tcp(commands), "--control", tcp(control), "--lease", "2s",
                 "--backoff", "200ms"});
  // Worker a reaches the daemon only through proxies that can be cut.
  TcpProxy a_events("127.0.0.1", events), a_commands("127.0.0.1", commands), a_control("127.0.0.1", control);
  REQUIRE(a_events.start());
  REQUIRE(a_commands.start());
  REQUIRE(a_control.start());
  auto worker = [&](const std::string& name, int ev, int cmd, int ctl) {
    std::string dir = sys.data_dir() + "/" + name;
    return Process({ASYNCOPS_WORKER_BIN, "--data-dir", dir, "--id", name, "--events", tcp(ev), "--commands", tcp(cmd),
                    "--control", tcp(ctl), "--heartbeat-ms", "200"},
                   sys.data_dir() + "/" + name + ".log");
  };
  Process a = worker("a", a_events.port(), a_commands.port(), a_control.port());
  Process b = worker("b", events, commands, control);
  INFO(sys.logs() + "\n--- a:\n" + slurp(sys.data_dir() + "/a.log") + "\n--- b:\n" + slurp(sys.data_dir() + "/b.log"));
  REQUIRE(eventually([&] { return metric(sys, "asyncops_worker_connections") == 2; }));

  std::vector<std::string> ops;
  auto create = [&](int i) {
    json op = sys.create_user("u" + std::to_string(i) + "@example.com", "U");
    ops.push_back(op["id"]);
  };
  for (int i = 0; i < 6; ++i) create(i);
  for (const auto& id : ops) REQUIRE(sys.wait_terminal(id)["state"] == "completed");

  a_events.cut();
  a_commands.cut();
  a_control.cut();
  auto cut_at = Clock::now();
  // The daemon stops sending to a: ZeroMQ heartbeats close its connection.
  for (int i = 6; i < 40; ++i) create(i);
  REQUIRE(eventually([&] { return metric(sys, "asyncops_worker_connections") == 1; }));
  auto dropped_after = Clock::now() - cut_at;
  // Every operation completes, also those that went into the dead link.
  for (const auto& id : ops) CHECK(sys.wait_terminal(id, 30)["state"] == "completed");
  CHECK(Clock::now() - cut_at < std::chrono::seconds(20));
  // ZeroMQ's 1.5 s timeout plus a loaded machine: well under the lease.
  CHECK(dropped_after < std::chrono::seconds(8));

  // The link comes back: a connects again, takes work again, and runs
  // nothing it was sent before the cut.
  uint64_t before = a_commands.connections();
  a_events.restore();
  a_commands.restore();
  a_control.restore();
  REQUIRE(eventually([&] { return a_commands.connections() > before; }));
  REQUIRE(eventually([&] { return metric(sys, "asyncops_worker_connections") == 2; }, std::chrono::seconds(20)));
  for (int i = 40; i < 60; ++i) create(i);
  for (const auto& id : ops) CHECK(sys.wait_terminal(id)["state"] == "completed");

  // One effect per operation across the two databases (each host its own).
  auto in_a = users_in(sys.data_dir() + "/a/users.db");
  auto in_b = users_in(sys.data_dir() + "/b/users.db");
  size_t both = 0;
  for (const auto& id : in_a) both += in_b.count(id);
  CHECK(both == 0);
  CHECK(in_a.size() + in_b.size() == ops.size());
  CHECK(metric(sys, "asyncops_events_late_total") == 0);
}

TEST_CASE("remote-worker mistakes are loud: no --control over tcp, users on several hosts, a protocol-1 peer",
          "[cut][issue18]") {
  int events = free_port(), commands = free_port(), control = free_port();
  System sys(0, {"--events", tcp(events), "--dispatch", tcp(commands), "--control", tcp(control)});
  INFO(sys.logs());
  // The daemon's ready line names the control endpoint too.
  CHECK(slurp(sys.data_dir() + "/daemon.log").find(tcp(control)) != std::string::npos);

  std::string log = sys.data_dir() + "/w.log";
  Process w({ASYNCOPS_WORKER_BIN, "--data-dir", sys.data_dir() + "/w", "--events", tcp(events), "--commands",
             tcp(commands)},
            log);
  REQUIRE(eventually([&] { return slurp(log).find("several separate user sets") != std::string::npos; }));
  CHECK(slurp(log).find("without --control: it will not hear cancel") != std::string::npos);

  // A protocol-1 worker (PULL) cannot connect to the ROUTER: refused, counted.
  // It connects once w's handshake is done: a success event names no
  // connection, so a refusal that overlaps another peer's handshake may go
  // uncounted (shared/handshake_watch.cpp). w logs the line above as it
  // starts, just before it connects.
  REQUIRE(eventually([&] { return metric(sys, "asyncops_worker_connections") == 1; }));
  zmq::context_t ctx(1);
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.connect(tcp(commands));
  CHECK(eventually([&] { return metric(sys, "asyncops_handshakes_failed_total") >= 1; }));
  CHECK(slurp(sys.data_dir() + "/daemon.log").find("refused a peer's handshake") != std::string::npos);
}
