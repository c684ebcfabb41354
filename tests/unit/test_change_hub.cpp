#include <catch2/catch.hpp>

#include <thread>

#include "daemon/change_hub.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using Clock = std::chrono::steady_clock;

namespace {
Change change(int64_t seq, OpState s = OpState::pending) {
  Change c;
  c.seq = seq;
  c.op = new_op();
  c.op.state = s;
  c.kind = history_kind_of(s);
  return c;
}
}  // namespace

TEST_CASE("the hub returns what came after a sequence number", "[hub]") {
  ChangeHub hub;
  auto all = hub.subscribe("");  // the ring is kept while someone follows everything
  hub.publish({change(1), change(2), change(3)});
  CHECK(hub.latest_seq() == 3);
  std::vector<Notice> out;
  REQUIRE(hub.notices_after(1, &out));
  REQUIRE(out.size() == 2);
  CHECK(out[0].seq == 2);
  CHECK(out[1].seq == 3);
}

TEST_CASE("the hub reports a gap once its ring has dropped what was asked for", "[hub]") {
  ChangeHub hub(2);
  auto all = hub.subscribe("");
  hub.publish({change(1), change(2), change(3)});
  std::vector<Notice> out;
  CHECK_FALSE(hub.notices_after(0, &out));
  out.clear();
  CHECK(hub.notices_after(2, &out));
  CHECK(out.size() == 1);
}

TEST_CASE("the hub's ring is bounded in bytes too: what it drops is a gap the store fills", "[hub]") {
  // Room for about three notices of this size, whatever their count.
  Change one = change(1);
  Notice sized;
  sized.op_id = one.op.id;
  sized.name = one.op.name;
  sized.op_json = operation_json_text(one.op);
  size_t each = ChangeHub::notice_bytes(sized);
  ChangeHub hub(1000, each * 3 + each / 2);
  auto all = hub.subscribe("");
  for (int64_t seq = 1; seq <= 10; ++seq) hub.publish({change(seq)});
  std::vector<Notice> out;
  CHECK_FALSE(hub.notices_after(6, &out));  // seq 7 was dropped
  out.clear();
  REQUIRE(hub.notices_after(7, &out));
  REQUIRE(out.size() == 3);
  CHECK(out[0].seq == 8);
  CHECK(out[2].seq == 10);
}

TEST_CASE("a subscription wakes on its operation's change and times out without one", "[hub]") {
  ChangeHub hub;
  Change mine = change(1);
  auto sub = hub.subscribe(mine.op.id);
  CHECK_FALSE(sub->wait(Clock::now() + std::chrono::milliseconds(20)));
  std::thread t([&] { hub.publish({mine}); });
  CHECK(sub->wait(Clock::now() + std::chrono::seconds(10)));
  t.join();
}

TEST_CASE("a subscription to one operation is not woken by others", "[hub]") {
  ChangeHub hub;
  auto sub = hub.subscribe(new_uuid_v7());
  auto all = hub.subscribe("");
  hub.publish({change(1)});
  CHECK(all->wait(Clock::now() + std::chrono::seconds(10)));
  CHECK_FALSE(sub->wait(Clock::now() + std::chrono::milliseconds(20)));
  CHECK(hub.subscribers() == 2);
  sub.reset();
  CHECK(hub.subscribers() == 1);
}

TEST_CASE("changes from before start-up are a gap the store must fill", "[hub]") {
  ChangeHub hub;
  auto all = hub.subscribe("");
  hub.set_floor(100);
  hub.publish({change(101)});
  std::vector<Notice> out;
  CHECK_FALSE(hub.notices_after(50, &out));
  CHECK(hub.notices_after(100, &out));
  CHECK(out.size() == 1);
}

TEST_CASE("shutdown wakes every subscription", "[hub]") {
  ChangeHub hub;
  auto sub = hub.subscribe("");
  std::thread t([&] { hub.shutdown(); });
  auto start = Clock::now();
  sub->wait(Clock::now() + std::chrono::seconds(10));
  CHECK(Clock::now() - start < std::chrono::seconds(5));
  CHECK(hub.is_shut_down());
  t.join();
}

TEST_CASE("with nobody following every change, the hub keeps no notices and says so", "[hub]") {
  ChangeHub hub;
  hub.publish({change(1), change(2)});
  std::vector<Notice> out;
  CHECK_FALSE(hub.notices_after(0, &out));  // read it from the store
  CHECK(hub.latest_seq() == 2);
  auto all = hub.subscribe("");
  hub.publish({change(3)});
  CHECK(hub.notices_after(2, &out));
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 3);
}

TEST_CASE("a change subscription gets each of its operation's changes, in order, and nullptr at shutdown", "[hub]") {
  ChangeHub hub;
  Change processing = change(2, OpState::processing);
  Change completed = change(3, OpState::completed);
  completed.op.id = processing.op.id;
  std::vector<std::pair<int64_t, OpState>> seen;
  int shutdowns = 0;
  auto sub = hub.subscribe_changes(processing.op.id, [&](const Change* c) {
    if (!c) {
      ++shutdowns;
      return;
    }
    seen.emplace_back(c->seq, c->op.state);
  });
  hub.publish({change(1)});  // another operation's: not seen
  hub.publish({processing, completed});
  CHECK(seen == std::vector<std::pair<int64_t, OpState>>{{2, OpState::processing}, {3, OpState::completed}});
  CHECK(shutdowns == 0);
  hub.shutdown();
  CHECK(shutdowns == 1);
  sub.reset();
  CHECK(hub.subscribers() == 0);
}
