#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
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
  GroupCommitter gc(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()), hooks);
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
  auto reader = SqliteStoreReader::open(path);
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
  GroupCommitter gc(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()), hooks);
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

namespace {
// Records each commit's changes, and can hold the commit thread inside the
// hook of its next commit until released, so that jobs queue up behind a
// commit that is known to be running.
struct CommitLog {
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::vector<Change>> commits;  // GUARDED_BY(m)
  std::vector<std::thread::id> threads;      // GUARDED_BY(m): the thread that ran each commit
  bool hold_next = false;                    // GUARDED_BY(m)
  bool holding = false;                      // GUARDED_BY(m)

  GroupCommitter::Hooks hooks() {
    GroupCommitter::Hooks h;
    h.on_changes = [this](const std::vector<Change>& c) {
      std::unique_lock<std::mutex> lock(m);
      commits.push_back(c);
      threads.push_back(std::this_thread::get_id());
      if (hold_next) {
        hold_next = false;
        holding = true;
        cv.notify_all();
        cv.wait(lock, [&] { return !holding; });
      }
      cv.notify_all();
    };
    return h;
  }
  // Holds the next commit in its hook until release().
  void hold_next_commit() {
    std::lock_guard<std::mutex> lock(m);
    hold_next = true;
  }
  void wait_holding() {
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return holding; }));
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    holding = false;
    cv.notify_all();
  }
  // Waits (at most 10 s) until n commits have been recorded; returns them.
  std::vector<std::vector<Change>> wait_commits(size_t n) {
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return commits.size() >= n; }));
    return commits;
  }
  std::thread::id thread_of(size_t commit) {
    std::lock_guard<std::mutex> lock(m);
    return threads.at(commit);
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(m);
    return commits.size();
  }
};

// Behind a commit held in its hook: queues a processing event for evented
// and a new accept, whose answer sets answered. Returns the accept's
// operation.
OperationRecord queue_event_and_accept(GroupCommitter& gc, const OperationRecord& evented,
                                       std::atomic<bool>& answered) {
  gc.submit_event(event_for(evented, OpState::processing));
  OperationRecord queued = new_op();
  REQUIRE(gc.accept_async(queued, IdempotencyKey{}, {}, [&answered](Result<GroupCommitter::Accepted> r) {
    CHECK(r.ok());
    answered = true;
  }));
  CHECK(gc.queued() == 2);
  return queued;
}

// The commit thread's batch of what queue_event_and_accept queued: the
// accept first, then the event.
void check_queued_batch(const std::vector<Change>& batch, const OperationRecord& accepted,
                        const OperationRecord& evented) {
  REQUIRE(batch.size() == 2);
  CHECK(batch[0].op.id == accepted.id);
  CHECK(batch[1].op.id == evented.id);
  CHECK(batch[1].op.state == OpState::processing);
}

std::vector<GroupCommitter::ReceivedEvent> received(Event e) {
  std::vector<GroupCommitter::ReceivedEvent> events(1);
  events[0].event = std::move(e);
  return events;
}
}  // namespace

TEST_CASE("an idle committer commits a lone job at once, alone, without waiting for company", "[group_commit]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.start();

  // A lone accept: its own commit, answered with nothing else in flight.
  auto op = new_op();
  REQUIRE(gc.accept(op).ok());
  CHECK(gc.counters().commits.load() == 1);

  // A lone event: nobody else is coming and nothing else is queued, yet it
  // is committed (no later job has to push it out), in a commit of its own.
  gc.submit_event(event_for(op, OpState::processing));
  auto commits = log.wait_commits(2);
  REQUIRE(commits.size() == 2);
  REQUIRE(commits[1].size() == 1);
  CHECK(commits[1][0].op.state == OpState::processing);
  CHECK(gc.queued() == 0);

  // The same for a write nobody waits on.
  std::atomic<bool> ran{false};
  gc.run_async([&](StoreWriter&, std::vector<Change>&) { ran = true; });
  log.wait_commits(3);
  CHECK(ran.load());
  CHECK(gc.counters().commits.load() == 3);
  gc.stop();
}

TEST_CASE("jobs queued during a commit go together into the next batch, which starts when it ends",
          "[group_commit]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.start();
  std::vector<OperationRecord> ops;
  for (int i = 0; i < 3; ++i) {
    ops.push_back(new_op());
    REQUIRE(gc.accept(ops.back()).ok());
  }
  log.wait_commits(3);  // an accept returns before its commit's hook has run
  // Hold the commit of the next job (one event) on the commit thread.
  log.hold_next_commit();
  gc.submit_event(event_for(ops[0], OpState::processing));
  log.wait_holding();

  // While it is held: events, a blocking accept, a write nobody waits on.
  gc.submit_event(event_for(ops[1], OpState::processing));
  std::vector<Event> burst = {event_for(ops[0], OpState::completed), event_for(ops[1], OpState::completed)};
  gc.submit_events(burst);
  auto accepted = std::async(std::launch::async, [&] { return gc.accept(new_op()); });
  eventually([&] { return gc.queued() == 4; });
  std::atomic<int> writes{0};
  gc.run_async([&](StoreWriter&, std::vector<Change>&) { ++writes; });
  REQUIRE(gc.queued() == 5);
  // The accept is not answered before its commit, and its commit has not
  // started: it waits behind the held one.
  CHECK(accepted.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);

  log.release();
  REQUIRE(accepted.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  auto r = accepted.get();
  REQUIRE(r.ok());
  auto commits = log.wait_commits(5);
  gc.stop();
  // 3 accepts, the held event, then one commit with all five queued jobs:
  // the new operation first, then the rest in the order they came.
  REQUIRE(commits.size() == 5);
  CHECK(gc.counters().commits.load() == 5);
  REQUIRE(commits[4].size() == 4);  // the accept and three events; the write changes nothing
  CHECK(commits[4][0].op.id == r->op.id);
  CHECK(commits[4][1].op.id == ops[1].id);
  CHECK(commits[4][1].op.state == OpState::processing);
  CHECK(commits[4][2].op.state == OpState::completed);
  CHECK(commits[4][3].op.state == OpState::completed);
  CHECK(writes.load() == 1);
  CHECK(gc.counters().events_applied.load() == 4);
}

TEST_CASE("a queue longer than the batch limits commits in full batches, one right after another", "[group_commit]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks(),
                    3, 3);
  gc.start();
  std::vector<OperationRecord> ops;
  for (int i = 0; i < 7; ++i) {
    ops.push_back(new_op());
    REQUIRE(gc.accept(ops.back()).ok());
  }
  log.wait_commits(7);
  log.hold_next_commit();
  gc.submit_event(event_for(ops[0], OpState::processing));
  log.wait_holding();
  std::vector<Event> events;
  for (int i = 1; i < 7; ++i) events.push_back(event_for(ops[i], OpState::processing));
  for (int i = 0; i < 3; ++i) events.push_back(event_for(ops[i], OpState::completed));
  gc.submit_events(events);
  REQUIRE(gc.queued() == 9);
  log.release();
  // 7 accepts + 1 held: then 9 events as 3 + 3 + 3, with no other job to
  // push them along.
  auto commits = log.wait_commits(8 + 3);
  gc.stop();
  REQUIRE(commits.size() == 11);
  CHECK(commits[8].size() == 3);
  CHECK(commits[9].size() == 3);
  CHECK(commits[10].size() == 3);
  CHECK(gc.counters().events_applied.load() == 10);
}

// bench/sse phase C: a backlog of events reaching the workers at once must
// not make a 202 wait for it to drain.
TEST_CASE("new operations queued behind a burst of events commit first, with at most max_others events",
          "[group_commit][lanes]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks(),
                    1024, 2);
  gc.start();
  std::vector<OperationRecord> ops;
  for (int i = 0; i < 3; ++i) {
    ops.push_back(new_op());
    REQUIRE(gc.accept(ops.back()).ok());
  }
  log.wait_commits(3);
  log.hold_next_commit();
  gc.submit_event(event_for(ops[0], OpState::processing));
  log.wait_holding();
  std::vector<Event> events;
  events.push_back(event_for(ops[1], OpState::processing));
  events.push_back(event_for(ops[2], OpState::processing));
  events.push_back(event_for(ops[0], OpState::completed));
  events.push_back(event_for(ops[1], OpState::completed));
  gc.submit_events(events);
  std::atomic<int> answered{0};
  OperationRecord late1 = new_op(), late2 = new_op();
  for (OperationRecord* op : {&late1, &late2}) {
    REQUIRE(gc.accept_async(*op, IdempotencyKey{}, {}, [&](Result<GroupCommitter::Accepted> r) {
      CHECK(r.ok());
      ++answered;
    }));
  }
  REQUIRE(gc.queued() == 6);
  log.release();
  auto commits = log.wait_commits(4 + 2);
  gc.stop();
  REQUIRE(commits.size() == 6);
  // The two new operations, in the order they came, then two events.
  REQUIRE(commits[4].size() == 4);
  CHECK(commits[4][0].op.id == late1.id);
  CHECK(commits[4][0].kind == HistoryKind::accepted);
  CHECK(commits[4][1].op.id == late2.id);
  CHECK(commits[4][2].op.id == ops[1].id);
  CHECK(commits[4][2].op.state == OpState::processing);
  CHECK(commits[4][3].op.id == ops[2].id);
  // The rest of the events, in order.
  REQUIRE(commits[5].size() == 2);
  CHECK(commits[5][0].op.id == ops[0].id);
  CHECK(commits[5][0].op.state == OpState::completed);
  CHECK(commits[5][1].op.id == ops[1].id);
  CHECK(answered.load() == 2);
  CHECK(gc.counters().events_applied.load() == 5);
}

TEST_CASE("accept_async on an idle committer commits on the caller's thread, one batch at a time",
          "[group_commit][lead]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.start();
  OperationRecord first = new_op();
  REQUIRE(gc.accept(first).ok());
  log.wait_commits(1);

  // Idle a while and nothing queued: committed and answered before
  // accept_async returns, on this thread. (A writer idle only since a
  // moment ago, or a commit thread still on its way back to waiting, and
  // the accept queues and is answered on the commit thread: so poll, with
  // a deadline, until one leads.)
  std::thread::id answered_on;
  OperationRecord led;
  bool lead_seen = false;
  auto lead_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!lead_seen && std::chrono::steady_clock::now() < lead_deadline) {
    led = new_op();
    std::atomic<bool> answered{false};
    REQUIRE(gc.accept_async(led, IdempotencyKey{}, {}, [&](Result<GroupCommitter::Accepted> r) {
      CHECK(r.ok());
      answered_on = std::this_thread::get_id();
      answered = true;
    }));
    if (answered.load() && answered_on == std::this_thread::get_id()) lead_seen = true;
    // Else answered on the commit thread, soon.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!answered.load() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    REQUIRE(answered.load());
    if (!lead_seen) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let the writer idle
  }
  REQUIRE(lead_seen);
  size_t commits_before = log.wait_commits(1).size();

  // While a caller's batch commits, nothing else does: the commit thread
  // takes what queued meanwhile after it, in one batch, accepts first.
  log.hold_next_commit();
  OperationRecord held = new_op();
  std::thread leader([&] {
    gc.accept_async(held, IdempotencyKey{}, {}, [](Result<GroupCommitter::Accepted> r) { CHECK(r.ok()); });
  });
  log.wait_holding();
  std::atomic<bool> queued_answered{false};
  OperationRecord queued = queue_event_and_accept(gc, first, queued_answered);
  CHECK_FALSE(queued_answered.load());
  log.release();
  leader.join();
  auto commits = log.wait_commits(commits_before + 2);
  gc.stop();
  REQUIRE(commits.size() == commits_before + 2);
  // Held there, so the leader's own commit (or the commit thread's, had it
  // not led) is the first after; then the two that queued, together.
  REQUIRE(commits[commits_before].size() == 1);
  CHECK(commits[commits_before][0].op.id == held.id);
  check_queued_batch(commits[commits_before + 1], queued, first);
  CHECK(queued_answered.load());
}

TEST_CASE("with leading off, accept_async is always answered on the commit thread", "[group_commit][lead]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.lead_when_idle(false);
  gc.start();
  for (int i = 0; i < 20; ++i) {
    std::mutex m;
    std::condition_variable cv;
    bool answered = false;
    std::thread::id on;
    REQUIRE(gc.accept_async(new_op(), IdempotencyKey{}, {}, [&](Result<GroupCommitter::Accepted> r) {
      CHECK(r.ok());
      std::lock_guard<std::mutex> lock(m);
      on = std::this_thread::get_id();
      answered = true;
      cv.notify_all();
    }));
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return answered; }));
    CHECK(on != std::this_thread::get_id());
  }
  gc.stop();
}

TEST_CASE("commit_events on an idle committer commits on the caller's thread, one batch at a time",
          "[group_commit][lead]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.start();
  OperationRecord a = new_op(), b = new_op();
  REQUIRE(gc.accept(a).ok());
  REQUIRE(gc.accept(b).ok());
  log.wait_commits(2);

  // Idle and nothing queued: committed, hooks included, before commit_events
  // returns, on this thread. (A commit thread still on its way back to
  // waiting, and the events queue and commit there: so poll, with a
  // deadline. A repeated processing event changes nothing, but each one
  // is a commit.)
  bool lead_seen = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); !lead_seen && Clock::now() < deadline;) {
    size_t before = log.count();
    auto events = received(event_for(a, OpState::processing));
    gc.commit_events(events);
    CHECK(events.empty());
    if (log.count() > before && log.thread_of(before) == std::this_thread::get_id()) {
      lead_seen = true;
    } else {
      log.wait_commits(before + 1);
      std::this_thread::yield();
    }
  }
  REQUIRE(lead_seen);
  auto led = log.wait_commits(1);
  bool processing_seen = false;
  for (const auto& commit : led) {
    for (const Change& c : commit) processing_seen |= c.op.id == a.id && c.op.state == OpState::processing;
  }
  CHECK(processing_seen);
  size_t commits_before = log.count();

  // While the caller's batch commits, nothing else does: the commit thread
  // takes what queued meanwhile after it, in one batch, accepts first. The
  // commit thread was not woken since the lead above, so this one leads too.
  log.hold_next_commit();
  std::thread tracker([&] {
    auto events = received(event_for(a, OpState::completed));
    gc.commit_events(events);
  });
  log.wait_holding();
  CHECK(log.thread_of(commits_before) == tracker.get_id());
  std::atomic<bool> queued_answered{false};
  OperationRecord queued = queue_event_and_accept(gc, b, queued_answered);
  log.release();
  tracker.join();
  auto commits = log.wait_commits(commits_before + 2);
  gc.stop();
  REQUIRE(commits.size() == commits_before + 2);
  REQUIRE(commits[commits_before].size() == 1);
  CHECK(commits[commits_before][0].op.id == a.id);
  CHECK(commits[commits_before][0].op.state == OpState::completed);
  check_queued_batch(commits[commits_before + 1], queued, b);
  CHECK(log.thread_of(commits_before + 1) != std::this_thread::get_id());
  CHECK(queued_answered.load());
}

TEST_CASE("with leading off, commit_events queues for the commit thread", "[group_commit][lead]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks());
  gc.lead_when_idle(false);
  gc.start();
  OperationRecord op = new_op();
  REQUIRE(gc.accept(op).ok());
  log.wait_commits(1);
  for (size_t i = 0; i < 20; ++i) {
    size_t before = log.count();
    auto events = received(event_for(op, i == 19 ? OpState::completed : OpState::processing));
    gc.commit_events(events);
    log.wait_commits(before + 1);
    CHECK(log.thread_of(before) != std::this_thread::get_id());
  }
  gc.stop();
  CHECK(gc.counters().events_applied.load() == 2);
}

TEST_CASE("events still commit while new operations fill every batch", "[group_commit][lanes]") {
  TempDir dir;
  CommitLog log;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), log.hooks(),
                    2, 1);
  // The commit thread's lanes: an accept on an idle committer must not be
  // committed by this thread, which would then hold in the hook itself.
  gc.lead_when_idle(false);
  gc.start();
  OperationRecord first = new_op();
  REQUIRE(gc.accept(first).ok());
  log.wait_commits(1);
  log.hold_next_commit();
  REQUIRE(gc.accept_async(new_op(), IdempotencyKey{}, {}, [](Result<GroupCommitter::Accepted>) {}));
  log.wait_holding();
  gc.submit_event(event_for(first, OpState::processing));
  std::vector<OperationRecord> more;
  for (int i = 0; i < 4; ++i) {
    more.push_back(new_op());
    REQUIRE(gc.accept_async(more.back(), IdempotencyKey{}, {}, [](Result<GroupCommitter::Accepted>) {}));
  }
  REQUIRE(gc.queued() == 5);
  log.release();
  auto commits = log.wait_commits(2 + 2);
  gc.stop();
  REQUIRE(commits.size() == 4);
  // A full batch of new operations still carries the event along.
  REQUIRE(commits[2].size() == 3);
  CHECK(commits[2][0].op.id == more[0].id);
  CHECK(commits[2][1].op.id == more[1].id);
  CHECK(commits[2][2].op.id == first.id);
  CHECK(commits[2][2].op.state == OpState::processing);
  REQUIRE(commits[3].size() == 2);
  CHECK(commits[3][0].op.id == more[2].id);
  CHECK(commits[3][1].op.id == more[3].id);
}

// The backlog (asyncops_backlog, and the admission limit) counts each
// operation's end once: a late outcome or a superseding outcome does not
// end an operation again.
TEST_CASE("late and superseding outcomes do not take an operation off the backlog a second time",
          "[group_commit][late]") {
  TempDir dir;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()), {});
  gc.start();
  auto a = gc.accept(new_op());
  auto b = gc.accept(new_op());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(gc.counters().unfinished.load() == 2);

  // a: attempt 2 ends it; attempt 1's outcome comes afterwards.
  Event processing = event_for(a->op, OpState::processing);
  gc.submit_event(processing);
  gc.submit_dispatched({{a->op.id, 2}});
  Event done = event_for(a->op, OpState::completed, "success");
  done.attempt = 2;
  gc.submit_event(done);
  Event late = event_for(a->op, OpState::completed, "success");
  late.attempt = 1;
  gc.submit_event(late);

  // b: the daemon gives up, then the worker's real outcome supersedes it.
  Event gave_up = event_for(b->op, OpState::failed, "worker_timeout");
  gave_up.resource = "";
  gave_up.worker = "asyncopsd";
  gc.submit_event(gave_up);
  gc.submit_event(event_for(b->op, OpState::completed, "success"));

  gc.stop();  // applies what is queued
  CHECK(gc.counters().events_late.load() == 1);
  CHECK(gc.counters().unfinished.load() == 0);
}
