// Fault injection for sagas (docs/design/sagas.md §9 "Fault injection"):
// many orders through the orders saga while the daemon and the workers are
// killed with SIGKILL at random and restarted at once; then every
// operation ends, and the demo services' effects tables and the operations'
// steps agree (saga_fixture.h, check_saga_invariants).
//
// Hidden from a plain `integration_tests` run ([.]): ctest runs it under its
// own name with the label `slow` (tests/CMakeLists.txt), so
// `ctest -LE slow` leaves it out. ASYNCOPS_SAGA_FAULT_ORDERS sets the number
// of orders (default 1000); ASYNCOPS_SAGA_FAULT_SEED the random seed
// (default: from the clock, printed).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <random>
#include <set>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include "harness.h"
#include "saga_fixture.h"

using namespace asyncops::it;
using nlohmann::json;

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::atoi(v);
}

// The daemon on a fixed port (its URL stays the same across restarts) and
// two workers of each demo service, on one data dir. Only the chaos thread
// kills and restarts them once the run has begun.
class Cluster {
 public:
  explicit Cluster(const json& routes) : m_port(free_port()) {
    m_routes = m_dir.path + "/routes.json";
    std::ofstream(m_routes) << routes.dump();
    m_url = "http://127.0.0.1:" + std::to_string(m_port);
    for (const char* service : {"inventory", "payments", "orders"}) {
      m_services.push_back(service);
      m_services.push_back(service);
    }
    m_workers.resize(m_services.size());
  }

  // Starts (or restarts) the daemon and waits for it to serve; false if it
  // did not within the deadline.
  bool start_daemon() {
    std::string url_path = m_dir.path + "/asyncopsd.url";
    ::unlink(url_path.c_str());
    m_daemon = Process({ASYNCOPSD_BIN, "--data-dir", m_dir.path, "--listen", "127.0.0.1:" + std::to_string(m_port),
                        "--routes", m_routes, "--lease", "2s", "--backoff", "100ms", "--max-attempts", "100"},
                       m_dir.path + "/daemon.log");
    return eventually([&] { return !slurp(url_path).empty(); }, std::chrono::seconds(60));
  }
  void start_worker(size_t i) {
    m_workers[i] = Process({ASYNCOPS_WORKER_BIN, "--data-dir", m_dir.path, "--service", m_services[i],
                            "--heartbeat-ms", "200"},
                           m_dir.path + "/worker.log");
  }
  void start_all() {
    if (!start_daemon()) throw std::runtime_error("asyncopsd did not start:\n" + slurp(m_dir.path + "/daemon.log"));
    for (size_t i = 0; i < m_workers.size(); ++i) start_worker(i);
  }
  // SIGKILL, reap, and start again at once.
  void kill_and_restart_daemon() {
    m_daemon.signal(SIGKILL);
    m_daemon.wait(std::chrono::seconds(10));
    if (!start_daemon()) throw std::runtime_error("asyncopsd did not restart");
  }
  void kill_and_restart_worker(size_t i) {
    m_workers[i].signal(SIGKILL);
    m_workers[i].wait(std::chrono::seconds(10));
    start_worker(i);
  }
  // SIGTERM to everything, waiting for each to exit.
  void stop_all() {
    for (auto& w : m_workers) w.signal(SIGTERM);
    for (auto& w : m_workers) w.wait(std::chrono::seconds(20));
    m_daemon.signal(SIGTERM);
    m_daemon.wait(std::chrono::seconds(30));
  }

  // "running", or how the daemon ended (for failure messages).
  std::string daemon_state() {
    int status = m_daemon.wait(std::chrono::milliseconds(0));
    if (status == -1) return "running";
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "exited " + std::to_string(WEXITSTATUS(status));
  }
  size_t worker_count() const { return m_workers.size(); }
  const std::string& url() const { return m_url; }
  const std::string& data_dir() const { return m_dir.path; }
  std::string log_tails() const {
    auto tail = [](const std::string& text) { return text.size() > 6000 ? text.substr(text.size() - 6000) : text; };
    return "--- daemon.log (tail)\n" + tail(slurp(m_dir.path + "/daemon.log")) + "--- worker.log (tail)\n" +
           tail(slurp(m_dir.path + "/worker.log"));
  }

 private:
  TempDir m_dir;
  int m_port;
  std::string m_routes, m_url;
  std::vector<std::string> m_services;
  Process m_daemon;
  std::vector<Process> m_workers;
};

// An HTTP request that is retried while the daemon is down or restarting
// (no connection, or a 5xx), until the deadline; nullopt if it never got an
// answer.
std::optional<httplib::Result> with_retries(const std::string& url, Clock::time_point deadline,
                                            const std::function<httplib::Result(httplib::Client&)>& request) {
  while (Clock::now() < deadline) {
    httplib::Client c(url);
    c.set_connection_timeout(2);
    c.set_read_timeout(10);
    auto r = request(c);
    if (r && r->status < 500) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the daemon is down: retry shortly
  }
  return std::nullopt;
}

struct Order {
  json body;
  bool cancel = false;
  std::chrono::milliseconds cancel_after{0};
};

}  // namespace

TEST_CASE("sagas under kill -9 of the daemon and the workers: every order ends and the effects balance",
          "[.][saga_faults]") {
  const int count = env_int("ASYNCOPS_SAGA_FAULT_ORDERS", 1000);
  const unsigned seed = static_cast<unsigned>(env_int("ASYNCOPS_SAGA_FAULT_SEED", static_cast<int>(::time(nullptr))));
  std::cerr << "saga faults: " << count << " orders, seed " << seed << std::endl;
  REQUIRE(count > 0);

  // The example's saga, with the daemon's lease and attempts on every step
  // (--lease 2s, --max-attempts 100), so that no compensation runs out of
  // attempts under the chaos.
  json routes = orders_saga_routes();
  saga_step(routes, "charge").erase("timeout");
  saga_step(routes, "charge").erase("max_attempts");
  Cluster cluster(routes);
  cluster.start_all();

  // The orders: about 20% declined, 10% out of stock at create, 10%
  // canceled by the client at a random moment.
  std::mt19937 rng(seed);
  std::vector<Order> orders(count);
  const char* skus[] = {"apple", "pear", "fig", "plum"};
  for (Order& o : orders) {
    int roll = static_cast<int>(rng() % 100);
    std::string card = roll < 20 ? "4000000000000002" : "4000000000000001";
    std::string sku = roll >= 20 && roll < 30 ? "gone" : skus[rng() % 4];
    o.body = {{"sku", sku}, {"qty", 1 + static_cast<int>(rng() % 5)}, {"card", card}};
    o.cancel = roll >= 30 && roll < 40;
    o.cancel_after = std::chrono::milliseconds(rng() % 40);  // a saga without faults takes a few tens of ms
  }

  // The chaos thread restarts what it kills, and a child of the harness
  // gets SIGKILL when the thread that forked it ends (PR_SET_PDEATHSIG), so
  // the thread stays until chaos_exit, after everything has been stopped.
  std::atomic<bool> chaos_stop{false}, chaos_done{false}, chaos_exit{false};
  std::atomic<int> daemon_kills{0}, worker_kills{0};
  std::string chaos_error;
  std::thread chaos([&] {
    std::mt19937 chaos_rng(seed + 1);
    try {
      while (!chaos_stop) {
        // A random pause of 0.1-0.6 s between kills, cut short by the stop:
        // a saga takes tens of milliseconds, so kills must come often to
        // land inside many of them (design §9 says 0.3-1.5 s; ten seconds
        // of that gave about a dozen kills).
        auto until = Clock::now() + std::chrono::milliseconds(100 + chaos_rng() % 500);
        while (!chaos_stop && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        if (chaos_stop) break;
        if (chaos_rng() % 4 == 0) {
          cluster.kill_and_restart_daemon();
          ++daemon_kills;
        } else {
          cluster.kill_and_restart_worker(chaos_rng() % cluster.worker_count());
          ++worker_kills;
        }
      }
    } catch (const std::exception& e) {
      chaos_error = e.what();
    }
    chaos_done = true;  // no kill or restart after this
    while (!chaos_exit) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // keep its children alive
  });

  // The canceller: cancels come due cancel_after the accept.
  using Due = std::pair<Clock::time_point, std::string>;
  std::mutex cancel_mu;
  std::priority_queue<Due, std::vector<Due>, std::greater<Due>> cancels;
  std::atomic<bool> submitting{true};
  std::atomic<int> cancels_sent{0};
  std::vector<std::string> failures;  // guarded by cancel_mu
  std::thread canceller([&] {
    for (;;) {
      std::optional<Due> due;
      {
        std::lock_guard<std::mutex> lock(cancel_mu);
        if (!cancels.empty() && cancels.top().first <= Clock::now()) {
          due = cancels.top();
          cancels.pop();
        } else if (cancels.empty() && !submitting) {
          return;
        }
      }
      if (!due) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // nothing due yet
        continue;
      }
      auto r = with_retries(cluster.url(), Clock::now() + std::chrono::seconds(120), [&](httplib::Client& c) {
        return c.Post("/operations/" + due->second + "/cancel", "", "application/json");
      });
      std::lock_guard<std::mutex> lock(cancel_mu);
      // 409: the operation had ended already (a decline is quick).
      if (!r || ((*r)->status != 200 && (*r)->status != 202 && (*r)->status != 409)) {
        failures.push_back("cancel of " + due->second + ": " + (r ? std::to_string((*r)->status) : "no answer"));
      } else {
        ++cancels_sent;
      }
    }
  });

  // A failed REQUIRE below throws: stop and join the threads first.
  struct JoinOnExit {
    std::function<void()> stop;
    std::vector<std::thread*> threads;
    ~JoinOnExit() {
      stop();
      for (auto* t : threads) {
        if (t->joinable()) t->join();
      }
    }
  } join_on_exit{[&] {
                   chaos_stop = true;
                   chaos_exit = true;
                   submitting = false;
                   std::lock_guard<std::mutex> lock(cancel_mu);
                   cancels = {};
                 },
                 {&canceller, &chaos}};

  // The submitter, at about 100 orders a second; each POST is retried
  // with its Idempotency-Key while the daemon is down.
  std::vector<std::string> ids(count);
  auto started = Clock::now();
  for (int i = 0; i < count; ++i) {
    std::this_thread::sleep_until(started + std::chrono::milliseconds(10 * i));  // the submission rate
    httplib::Headers key = {{"Idempotency-Key", "saga-fault-" + std::to_string(seed) + "-" + std::to_string(i)}};
    std::string body = orders[i].body.dump();
    auto r = with_retries(cluster.url(), Clock::now() + std::chrono::seconds(120), [&](httplib::Client& c) {
      return c.Post("/orders", key, body, "application/json");
    });
    INFO("order " << i << " " << body);
    REQUIRE(r);
    INFO((*r)->body);
    REQUIRE(((*r)->status == 202 || (*r)->status == 200));
    ids[i] = json::parse((*r)->body).value("id", "");
    REQUIRE(!ids[i].empty());
    if (orders[i].cancel) {
      std::lock_guard<std::mutex> lock(cancel_mu);
      cancels.emplace(Clock::now() + orders[i].cancel_after, ids[i]);
    }
  }
  submitting = false;
  canceller.join();
  chaos_stop = true;
  REQUIRE(eventually([&] { return chaos_done.load(); }, std::chrono::seconds(120)));
  auto submitted = Clock::now();
  INFO(chaos_error);
  REQUIRE(chaos_error.empty());
  INFO(json(failures).dump(1));
  CHECK(failures.empty());

  // Every operation ends (the daemon long-polls each), within one deadline.
  auto deadline = Clock::now() + std::chrono::seconds(300);
  std::vector<json> ops;
  httplib::Client client(cluster.url());
  client.set_read_timeout(30);
  for (const std::string& id : ids) {
    json op = json::object();
    std::string last = "no answer";
    while (Clock::now() < deadline) {
      auto r = client.Get("/operations/" + id + "?wait=10");
      last = r ? std::to_string(r->status) + " " + r->body : "no answer: " + httplib::to_string(r.error());
      if (r && r->status == 200) {
        op = json::parse(r->body, nullptr, false);
        if (op.is_object() && op.value("done", false)) break;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));  // not an answer to wait on: retry shortly
      }
    }
    INFO(cluster.log_tails());
    INFO("operation " << id << ": " << last << "; asyncopsd " << cluster.daemon_state());
    REQUIRE((op.is_object() && op.value("done", false)));
    ops.push_back(op);
  }
  auto ended = Clock::now();
  cluster.stop_all();
  chaos_exit = true;
  chaos.join();

  std::map<std::string, int> outcomes;
  for (const json& op : ops) {
    outcomes[op.value("state", "") + "/" + op.value("code", "")]++;
    CHECK(op.value("code", "") != "compensation_failed");
  }
  // One operation per order: the retried POSTs replayed their keys.
  std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  {
    SQLite::Database store(cluster.data_dir() + "/asyncops.db", SQLite::OPEN_READONLY);
    CHECK(store.execAndGet("SELECT count(*) FROM operations").getInt() == count);
  }
  auto effects = read_saga_effects(cluster.data_dir());
  auto problems = check_saga_invariants(effects, ops);
  if (problems.size() > 50) problems.resize(50);
  INFO(json(problems).dump(1));
  CHECK(problems.empty());

  std::cerr << "saga faults: " << count << " orders, " << daemon_kills << " daemon kills, " << worker_kills
            << " worker kills, " << cancels_sent << " cancels; submitted in "
            << std::chrono::duration_cast<std::chrono::seconds>(submitted - started).count() << " s, all ended "
            << std::chrono::duration_cast<std::chrono::seconds>(ended - submitted).count() << " s later; outcomes:";
  for (const auto& kv : outcomes) std::cerr << " " << kv.first << "=" << kv.second;
  std::cerr << "; effects: " << effects.inventory.size() << " inventory, " << effects.payments.size()
            << " payments, " << effects.orders.size() << " orders" << std::endl;
  CHECK(daemon_kills + worker_kills > 0);
}
