// ExternalRunner and protocol 2 (docs/protocol.md §4a, §13): every run of
// an exec or http handler, the first and each retry, starts before the end
// of its grant's window; one that cannot is not made, nothing is recorded,
// and the daemon's redelivery runs the command again.
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include "command_of.h"
#include "shared/ids.h"
#include "store_fixture.h"
#include "workers/external/external_runner.h"
#include "workers/worker.h"

using namespace asyncops;
using namespace asyncops::test;
using namespace std::chrono_literals;

namespace {

// A handler that counts its runs and fails each one (a retry), or completes.
class CountingHandler : public ExternalHandler {
 public:
  explicit CountingHandler(bool fail) : m_fail(fail) {}
  RunResult handle(const Command& cmd, const RunContext&) override {
    ++runs;
    if (m_fail) return RunResult::again("handler_failed", "exit 1");
    return RunResult::done(Outcome::completed(cmd.name + "_completed", cmd.resource, {{"ok", true}}));
  }
  const char* kind() const override { return "exec"; }
  std::atomic<int> runs{0};

 private:
  bool m_fail;
};

struct RunnerFixture {
  TempDir dir;
  std::string db_path = dir.path + "/orders.db";
  Service svc;
  RunnerFixture() {
    svc.name = "orders";
    svc.init_schema = [](SQLite::Database&) {};
    SQLite::Database db(db_path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    Worker::init_database(svc, db);
  }
  Command cmd() {
    return asyncops::test::command_of("place_order", "orders", "POST /orders", "/orders/7");
  }
  int recorded() {
    SQLite::Database db(db_path, SQLite::OPEN_READONLY);
    return db.execAndGet("SELECT count(*) FROM handled").getInt();
  }
};

// What the runner finished, waiting up to 10 s for want of them.
std::vector<ExternalRunner::Finished> wait_finished(ExternalRunner& runner, size_t want) {
  std::vector<ExternalRunner::Finished> all;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (all.size() < want && std::chrono::steady_clock::now() < deadline) {
    for (auto& f : runner.take_finished()) all.push_back(std::move(f));
    if (all.size() < want) std::this_thread::sleep_for(5ms);  // polled with a deadline
  }
  return all;
}

// Starts one command of f's on a new runner, granted until now + window,
// and returns what the runner finished with it.
ExternalRunner::Finished run_one(RunnerFixture& f, std::shared_ptr<ExternalHandler> handler,
                                 const ExternalOptions& options, std::chrono::steady_clock::duration window) {
  ExternalRunner runner("orders", std::move(handler), options, f.db_path, "w1");
  Command c = f.cmd();
  REQUIRE(runner.start(c, false, false, std::chrono::steady_clock::now() + window));
  auto done = wait_finished(runner, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].request_id == c.id);
  return std::move(done[0]);
}

}  // namespace

TEST_CASE("external runner: a command whose grant window has ended is not run and nothing is recorded",
          "[external]") {
  RunnerFixture f;
  auto handler = std::make_shared<CountingHandler>(false);
  auto done = run_one(f, handler, ExternalOptions{}, -1ms);
  CHECK_FALSE(done.event);  // left to redelivery
  CHECK(handler->runs == 0);
  CHECK(f.recorded() == 0);
}

TEST_CASE("external runner: a granted command runs and its outcome is recorded", "[external]") {
  RunnerFixture f;
  auto handler = std::make_shared<CountingHandler>(false);
  auto done = run_one(f, handler, ExternalOptions{}, 30s);
  REQUIRE(done.event);
  CHECK(done.event->state == OpState::completed);
  CHECK(handler->runs == 1);
  CHECK(f.recorded() == 1);
}

TEST_CASE("external runner: retries stay inside the grant window, and past it the command is left to redelivery",
          "[external]") {
  RunnerFixture f;
  ExternalOptions options;
  options.attempts = 5;
  options.backoff = 200ms;  // 200, 400, 800 ms: the second retry would start after the window
  auto handler = std::make_shared<CountingHandler>(true);
  auto done = run_one(f, handler, options, 500ms);
  CHECK_FALSE(done.event);  // no failed outcome: the daemon redelivers it
  CHECK(handler->runs == 2);   // the first run and the retry 200 ms later; not the one 400 ms after that
  CHECK(f.recorded() == 0);
}

TEST_CASE("external runner: retries that fit the window end failed with the last run's message", "[external]") {
  RunnerFixture f;
  ExternalOptions options;
  options.attempts = 3;
  options.backoff = 10ms;
  auto handler = std::make_shared<CountingHandler>(true);
  auto done = run_one(f, handler, options, 30s);
  REQUIRE(done.event);
  CHECK(done.event->state == OpState::failed);
  CHECK(done.event->code == "handler_failed");
  CHECK(done.event->message.find("attempt 3 of 3") != std::string::npos);
  CHECK(handler->runs == 3);
  CHECK(f.recorded() == 1);
}
