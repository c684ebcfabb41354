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

// A Prefer: wait on a fresh accept subscribes after the accept's commit; it
// may skip reading the store only when the hub can vouch that nothing
// happened to the operation in between.
TEST_CASE("a subscription from a known seq learns whether its operation changed since", "[hub]") {
  auto subscribe = [](ChangeHub& hub, const std::string& id, int64_t since) {
    bool unchanged = false;
    auto sub = hub.subscribe_changes(id, since, &unchanged, [](const Change*) {});
    return unchanged;
  };
  Change accepted = change(5);
  const std::string id = accepted.op.id;

  SECTION("without a ring: unchanged only while nothing at all was published after since") {
    ChangeHub hub;
    CHECK(subscribe(hub, id, 5));  // the accept itself not yet published
    hub.publish({accepted});
    CHECK(subscribe(hub, id, 5));
    hub.publish({change(6)});  // another operation's, but no ring to tell
    CHECK_FALSE(subscribe(hub, id, 5));
    CHECK_FALSE(subscribe(hub, id, 0));  // no seq: cannot tell
  }
  SECTION("with a ring: only a change to that operation counts") {
    ChangeHub hub;
    auto all = hub.subscribe("");
    hub.publish({change(4), accepted, change(6)});
    CHECK(subscribe(hub, id, 5));
    CHECK_FALSE(subscribe(hub, id, 3));  // the accept itself came after 3
    Change processing = change(7, OpState::processing);
    processing.op.id = id;
    hub.publish({processing});
    CHECK_FALSE(subscribe(hub, id, 5));
    CHECK(subscribe(hub, id, 7));
  }
  SECTION("a change published after subscribing reaches the subscription") {
    ChangeHub hub;
    hub.publish({accepted});
    bool unchanged = false;
    std::vector<int64_t> seen;
    auto sub = hub.subscribe_changes(id, 5, &unchanged, [&](const Change* c) {
      if (c) seen.push_back(c->seq);
    });
    CHECK(unchanged);
    Change completed = change(6, OpState::completed);
    completed.op.id = id;
    hub.publish({completed});
    CHECK(seen == std::vector<int64_t>{6});
  }
  SECTION("a ring that dropped what came after since cannot tell") {
    ChangeHub hub(2);
    auto all = hub.subscribe("");
    hub.publish({accepted, change(6), change(7), change(8)});
    CHECK_FALSE(subscribe(hub, id, 5));
  }
}
