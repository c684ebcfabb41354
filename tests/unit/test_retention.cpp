// daemon/retention.h: the Pruner forgets terminal operations past the
// retention period, in batches, and nothing else.
#include <catch2/catch.hpp>

#include <thread>

#include "daemon/retention.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

namespace {

// Accepts an operation and, unless end_state is pending, ends it at `at`.
OperationRecord operation_ended_at(GroupCommitter& gc, OpState end_state, int64_t at) {
  auto accepted = gc.accept(new_op());
  REQUIRE(accepted);
  if (end_state != OpState::pending) {
    Event e = event_for(accepted->op, end_state);
    auto applied = StoreWriter::Applied::rejected;
    REQUIRE(gc.run([&](StoreWriter& w, std::vector<Change>&) {
      Change c;
      applied = w.apply_event(e, at, &c);  // on the commit thread: no REQUIRE here
    }));
    REQUIRE(applied == StoreWriter::Applied::changed);
  }
  return accepted->op;
}

}  // namespace

TEST_CASE("the pruner forgets terminal operations past retention, and keeps recent and unfinished ones",
          "[retention]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  GroupCommitter gc(std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()), GroupCommitter::Hooks{});
  gc.start();
  int64_t hour_ago = now_ms() - 3600 * 1000;
  auto old_completed = operation_ended_at(gc, OpState::completed, hour_ago);
  auto old_failed = operation_ended_at(gc, OpState::failed, hour_ago);
  auto recent = operation_ended_at(gc, OpState::completed, now_ms());
  auto unfinished = operation_ended_at(gc, OpState::pending, 0);

  Pruner pruner(gc, std::chrono::minutes(10));
  pruner.start();
  eventually([&] { return pruner.pruned() == 2; });
  pruner.stop();
  gc.stop();

  auto reader = std::move(SqliteStoreReader::open(path).value());
  CHECK_FALSE(reader->get_operation(old_completed.id));
  CHECK(reader->history(old_completed.id).empty());
  CHECK_FALSE(reader->get_operation(old_failed.id));
  CHECK(reader->get_operation(recent.id));
  CHECK(reader->get_operation(unfinished.id));
  CHECK(pruner.pruned() == 2);
}

TEST_CASE("the pruner goes again soon after a full batch instead of waiting its idle interval", "[retention]") {
  TempDir dir;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()),
                    GroupCommitter::Hooks{});
  gc.start();
  int64_t hour_ago = now_ms() - 3600 * 1000;
  for (int i = 0; i < 5; ++i) operation_ended_at(gc, OpState::completed, hour_ago);
  // Batches of 2 with an idle interval no test waits out: 2 + 2 + 1 come
  // only through the quick follow-ups.
  Pruner pruner(gc, std::chrono::minutes(10), 2, std::chrono::hours(1));
  pruner.start();
  eventually([&] { return pruner.pruned() == 5; });
  pruner.stop();
  gc.stop();
}

TEST_CASE("stopping an idle pruner returns at once", "[retention]") {
  TempDir dir;
  GroupCommitter gc(std::move(SqliteStoreWriter::open(dir.path + "/asyncops.db", SyncMode::normal).value()),
                    GroupCommitter::Hooks{});
  gc.start();
  Pruner pruner(gc, std::chrono::minutes(10), 500, std::chrono::hours(1));
  pruner.start();
  auto t0 = Clock::now();
  pruner.stop();
  CHECK(Clock::now() - t0 < std::chrono::seconds(30));
  CHECK(pruner.pruned() == 0);
  gc.stop();
}
