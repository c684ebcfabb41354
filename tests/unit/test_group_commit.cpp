#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
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

TEST_CASE("an accept waits for a command request on its way, and only for one", "[group_commit]") {
  TempDir dir;
  CommitWindows windows;
  windows.accept = std::chrono::seconds(30);  // longer than any test: only an arrival's end releases it
  windows.events = std::chrono::seconds(30);
  GroupCommitter gc(std::move(StoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), {}, 1024,
                    windows);
  gc.start();

  // Nobody else is coming: it commits at once, window or not.
  auto t0 = Clock::now();
  REQUIRE(gc.accept(new_op()).ok());
  CHECK(Clock::now() - t0 < std::chrono::seconds(10));

  // Another request is on its way: the commit holds for it, and both go
  // out in one transaction when it arrives.
  uint64_t commits = gc.counters().commits.load();
  auto other = std::make_unique<GroupCommitter::Arrival>(gc);
  auto first = std::async(std::launch::async, [&] { return gc.accept(new_op()).ok(); });
  CHECK(first.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  auto second = std::async(std::launch::async, [&] { return gc.accept(new_op(), IdempotencyKey{}, other.get()).ok(); });
  REQUIRE(first.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(second.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(first.get());
  CHECK(second.get());
  CHECK(gc.counters().commits.load() == commits + 1);
  other.reset();  // already ended by accept(): nothing more happens

  // A request that ends without an accept (say, a 422) releases the wait too.
  auto waiting_for_nothing = std::make_unique<GroupCommitter::Arrival>(gc);
  auto third = std::async(std::launch::async, [&] { return gc.accept(new_op()).ok(); });
  CHECK(third.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
  waiting_for_nothing.reset();
  REQUIRE(third.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(third.get());
  gc.stop();
}

TEST_CASE("events wait for company at most their window, and a full queue commits at once", "[group_commit]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  std::atomic<int> changes{0};
  GroupCommitter::Hooks hooks;
  hooks.on_changes = [&](const std::vector<Change>& c) { changes += static_cast<int>(c.size()); };
  CommitWindows windows;
  windows.events = std::chrono::milliseconds(50);
  windows.eager = 3;
  GroupCommitter gc(std::move(StoreWriter::open(path, SyncMode::normal).value()), hooks, 1024, windows);
  gc.start();
  std::vector<OperationRecord> ops;
  for (int i = 0; i < 3; ++i) {
    ops.push_back(new_op());
    REQUIRE(gc.accept(ops.back()).ok());
  }
  auto wait_for = [&](int n) {
    for (auto deadline = Clock::now() + std::chrono::seconds(10); changes.load() < n;) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::yield();
    }
  };
  wait_for(3);
  // One event alone: committed within its window, not left behind.
  gc.submit_event(event_for(ops[0], OpState::processing));
  wait_for(4);
  // Three at once reach `eager`: committed without waiting out the window.
  std::vector<Event> burst = {event_for(ops[0], OpState::completed), event_for(ops[1], OpState::completed),
                              event_for(ops[2], OpState::completed)};
  gc.submit_events(burst);
  wait_for(7);
  gc.stop();
  CHECK(gc.counters().events_applied.load() == 4);
}

TEST_CASE("an accept behind waiting events waits the accept window, not the events window", "[group_commit]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  CommitWindows windows;
  windows.accept = std::chrono::milliseconds(50);
  windows.events = std::chrono::seconds(60);
  GroupCommitter gc(std::move(StoreWriter::open(path, SyncMode::normal).value()), {}, 1024, windows);
  gc.start();
  auto op = new_op();
  REQUIRE(gc.accept(op).ok());
  gc.submit_event(event_for(op, OpState::processing));  // now waits up to 60 s for company
  for (auto deadline = Clock::now() + std::chrono::seconds(10); gc.queued() != 1;) {
    REQUIRE(Clock::now() < deadline);
    std::this_thread::yield();
  }
  GroupCommitter::Arrival someone_else(gc);  // another request is on its way, and never comes
  auto second = std::async(std::launch::async, [&] { return gc.accept(new_op()).ok(); });
  REQUIRE(second.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK(second.get());
  CHECK(gc.counters().events_applied.load() == 1);  // the event went with it
  gc.stop();
}
