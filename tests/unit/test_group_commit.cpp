#include <catch2/catch.hpp>

#include <condition_variable>
#include <thread>

#include "daemon/group_commit.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

TEST_CASE("concurrent accepts share one transaction, each answered after its commit", "[group_commit]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::mutex m;
  std::condition_variable cv;
  bool release = false;
  int hook_calls = 0;
  std::vector<Command> dispatched;
  GroupCommitter::Hooks hooks;
  hooks.on_changes = [&](const std::vector<Change>&) {
    std::unique_lock<std::mutex> lock(m);
    // Hold the first commit's thread so that the others queue up behind it.
    if (hook_calls++ == 0) cv.wait(lock, [&] { return release; });
  };
  hooks.on_accepted = [&](std::vector<Command> c) {
    std::lock_guard<std::mutex> lock(m);
    for (auto& x : c) dispatched.push_back(std::move(x));
  };
  GroupCommitter gc(std::move(StoreWriter::open(path, SyncMode::normal).value()), hooks);
  gc.start();

  std::thread first([&] { CHECK(gc.accept(new_op()).ok()); });
  // Wait until the first commit is held in its hook.
  for (auto deadline = Clock::now() + std::chrono::seconds(10); gc.counters().commits.load() < 1;) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::yield();
  }
  const int n = 20;
  std::vector<std::thread> others;
  for (int i = 0; i < n; ++i) others.emplace_back([&] { CHECK(gc.accept(new_op()).ok()); });
  for (auto deadline = Clock::now() + std::chrono::seconds(10); gc.queued() < n;) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::yield();
  }
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
  }
  cv.notify_all();
  first.join();
  for (auto& t : others) t.join();
  gc.stop();
  CHECK(gc.counters().accepted.load() == n + 1);
  CHECK(gc.counters().commits.load() == 2);  // the 20 queued accepts shared one commit
  CHECK(dispatched.size() == n + 1);
  auto reader = StoreReader::open(path);
  OperationFilter all;
  all.limit = 100;
  CHECK(reader.value()->list_operations(all).size() == n + 1);
}

TEST_CASE("events are applied with the next commit and unknown ones are counted", "[group_commit]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::vector<Change> seen;
  std::mutex m;
  GroupCommitter::Hooks hooks;
  hooks.on_changes = [&](const std::vector<Change>& c) {
    std::lock_guard<std::mutex> lock(m);
    seen.insert(seen.end(), c.begin(), c.end());
  };
  GroupCommitter gc(std::move(StoreWriter::open(path, SyncMode::normal).value()), hooks);
  gc.start();
  auto accepted = gc.accept(new_op());
  REQUIRE(accepted.ok());
  gc.submit_event(event_for(accepted->op, OpState::completed));
  gc.submit_event(event_for(new_op(), OpState::completed));  // nobody's
  gc.stop();  // applies what is queued
  CHECK(gc.counters().events_applied.load() == 1);
  CHECK(gc.counters().events_unknown.load() == 1);
  REQUIRE(seen.size() == 2);
  CHECK(seen[1].op.state == OpState::completed);
}
