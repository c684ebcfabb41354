// The WebSocket protocol at /ws (docs/websocket.md) without sockets.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "daemon/ws_channel.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

struct Hub : RunningStoreWithHub {
  std::atomic<int> wakes{0};
  std::unique_ptr<WsChannel> channel(std::optional<std::string> owner = std::nullopt) {
    WebSocketGrant g;
    g.owner = std::move(owner);
    return std::make_unique<WsChannel>(hub, readers, g, [this] { ++wakes; });
  }
};

std::vector<json> send(WsChannel& ch, const json& msg) {
  std::vector<std::string> out;
  ch.on_message(msg.dump(), &out);
  std::vector<json> parsed;
  for (auto& f : out) parsed.push_back(json::parse(f));
  return parsed;
}

std::vector<json> drain(WsChannel& ch, size_t max = 1000) {
  std::vector<std::string> out;
  while (ch.poll(&out, max) && out.size() < 100000) {
  }
  std::vector<json> parsed;
  for (auto& f : out) parsed.push_back(json::parse(f));
  return parsed;
}

}  // namespace

TEST_CASE("ws: subscribing to one operation sends its state, its changes, then end", "[ws]") {
  Hub h;
  auto op = h.accept("");
  auto ch = h.channel();
  auto ack = send(*ch, {{"subscribe", op.id}});
  REQUIRE(ack.size() == 1);
  CHECK(ack[0]["subscribed"] == op.id);
  CHECK(h.wakes > 0);
  auto first = drain(*ch);
  REQUIRE(first.size() == 1);
  CHECK(first[0]["operation"]["id"] == op.id);
  CHECK(first[0]["operation"]["state"] == "pending");
  int64_t seq = first[0]["seq"];
  h.finish(op);
  auto rest = drain(*ch);
  REQUIRE(rest.size() == 2);
  CHECK(rest[0]["seq"].get<int64_t>() > seq);
  CHECK(rest[0]["operation"]["state"] == "completed");
  CHECK(rest[1] == json{{"end", op.id}});
  CHECK(ch->subscriptions() == 0);
}

TEST_CASE("ws: a filter with last_event_id replays exactly what came after, then follows live", "[ws]") {
  Hub h;
  auto a = h.accept("", "create_user");
  auto b = h.accept("", "delete_user");
  auto c = h.accept("", "create_user");
  auto ch = h.channel();
  // Everything after a's acceptance, of create_user only.
  auto all = drain(*h.channel());  // (a fresh channel with no subscription sends nothing)
  CHECK(all.empty());
  auto probe = h.channel();
  send(*probe, {{"subscribe", a.id}});
  int64_t a_seq = drain(*probe)[0]["seq"];
  send(*ch, {{"subscribe", {{"name", "create_user"}}}, {"last_event_id", a_seq}});
  auto replay = drain(*ch);
  REQUIRE(replay.size() == 1);
  CHECK(replay[0]["operation"]["id"] == c.id);
  auto d = h.accept("", "create_user");
  h.accept("", "delete_user");
  auto live = drain(*ch);
  REQUIRE(live.size() == 1);
  CHECK(live[0]["operation"]["id"] == d.id);
  CHECK(live[0]["seq"].get<int64_t>() > replay[0]["seq"].get<int64_t>());
  // Unsubscribe takes the same argument.
  auto un = send(*ch, {{"unsubscribe", {{"name", "create_user"}}}});
  REQUIRE(un.size() == 1);
  CHECK(un[0]["unsubscribed"] == json{{"name", "create_user"}});
  h.accept("", "create_user");
  CHECK(drain(*ch).empty());
  (void)b;
}

TEST_CASE("ws: owner scoping works as for SSE", "[ws]") {
  Hub h;
  auto anns = h.accept("ann");
  auto bob = h.channel(std::string("bob"));
  auto err = send(*bob, {{"subscribe", anns.id}});
  REQUIRE(err.size() == 1);
  CHECK(err[0]["error"]["status"] == 404);
  CHECK(err[0]["error"]["code"] == "operation_not_found");
  send(*bob, {{"subscribe", json::object()}, {"last_event_id", 0}});
  auto bobs = h.accept("bob");
  h.accept("ann");
  auto seen = drain(*bob);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0]["operation"]["id"] == bobs.id);
  // An admin (no owner) sees every operation.
  auto admin = h.channel();
  send(*admin, {{"subscribe", json::object()}, {"last_event_id", 0}});
  CHECK(drain(*admin).size() == 3);
}

TEST_CASE("ws: bad messages get an error frame with a problem, and the channel goes on", "[ws]") {
  Hub h;
  auto ch = h.channel();
  auto code = [&](const std::string& text) {
    std::vector<std::string> out;
    ch->on_message(text, &out);
    REQUIRE(out.size() == 1);
    auto j = json::parse(out[0]);
    REQUIRE(j.contains("error"));
    CHECK(j["error"]["type"] == "about:blank");
    return j["error"]["code"].get<std::string>();
  };
  CHECK(code("not json") == "invalid_message");
  CHECK(code("[1,2]") == "invalid_message");
  CHECK(code(R"({"hello":1})") == "invalid_message");
  CHECK(code(R"({"subscribe":{"state":"sleeping"}})") == "invalid_message");
  CHECK(code(R"({"subscribe":{"owner":"x"}})") == "invalid_message");
  CHECK(code(R"({"subscribe":{},"last_event_id":-1})") == "invalid_message");
  CHECK(code(R"({"subscribe":42})") == "invalid_message");
  CHECK(code(std::string(100, '[') + std::string(100, ']')) == "invalid_message");
  CHECK(code(R"({"unsubscribe":"nothing"})") == "not_subscribed");
  std::vector<std::string> out;
  ch->on_message(R"({"subscribe":{"state":"completed"}})", &out);
  CHECK(json::parse(out.at(0)).contains("subscribed"));
  CHECK(code(R"({"subscribe":{"state":"completed"}})") == "already_subscribed");
}

TEST_CASE("ws: poll hands out at most max frames and says more are due", "[ws]") {
  Hub h;
  for (int i = 0; i < 10; ++i) h.accept("");
  auto ch = h.channel();
  send(*ch, {{"subscribe", json::object()}, {"last_event_id", 0}});
  std::vector<std::string> out;
  bool more = ch->poll(&out, 4);
  while (out.empty() && more) more = ch->poll(&out, 4);
  CHECK(out.size() <= 4);
  CHECK(more);
  size_t total = out.size();
  while (more) {
    out.clear();
    more = ch->poll(&out, 4);
    CHECK(out.size() <= 4);
    total += out.size();
  }
  CHECK(total == 10);
}

TEST_CASE("ws: a change frame is the operation as it is, then its kind and step", "[ws][saga]") {
  FeedItem i;
  i.seq = 12;
  i.kind = "step_rejected";
  i.step = "charge";
  i.op_json = R"({"id":"a","steps":[]})";
  // The frame still begins as it did before kind and step were added.
  CHECK(ws_change_frame(i) == R"({"seq":12,"operation":{"id":"a","steps":[]},"kind":"step_rejected","step":"charge"})");
  i.kind = "completed";
  i.step = "";
  CHECK(ws_change_frame(i) == R"({"seq":12,"operation":{"id":"a","steps":[]},"kind":"completed","step":null})");
  i.step = "a\"b";  // never a valid step name, but still JSON
  CHECK(json::parse(ws_change_frame(i))["step"] == "a\"b");
}

TEST_CASE("ws: each change of a saga carries its history kind and step, from the store and from the hub", "[ws][saga]") {
  Hub h;
  OperationRecord op = new_op("place_order");
  std::vector<saga::StepPlan> plan = {{"reserve", "inventory", "reserve_stock", "release_stock", 0, 0},
                                      {"charge", "payments", "charge_card", "", 0, 0}};
  auto all = h.channel();
  send(*all, {{"subscribe", json::object()}});
  drain(*all);  // its first poll places it at the hub's latest seq
  int64_t before = h.hub.latest_seq();
  REQUIRE(h.gc.run([&op, &plan](StoreWriter& w, std::vector<Change>& changes) {
    changes.push_back(w.insert_operation(&op));
    auto a = w.start_saga(op, plan, now_ms());
    for (Change& c : a.changes) changes.push_back(std::move(c));
  }));
  h.published_past(before);
  // From the hub (a filter subscription): accepted, then step 1 dispatched.
  auto live = drain(*all);
  REQUIRE(live.size() == 2);
  CHECK(live[0]["kind"] == "accepted");
  CHECK(live[0]["step"].is_null());
  CHECK(live[1]["kind"] == "step_dispatched");
  CHECK(live[1]["step"] == "reserve");
  CHECK(live[1]["operation"]["steps"][0]["state"] == "pending");
  // From the store (one operation's stream, replayed from the start).
  auto one = h.channel();
  send(*one, {{"subscribe", op.id}, {"last_event_id", 0}});
  auto replay = drain(*one);
  REQUIRE(replay.size() == 2);
  CHECK(replay[0]["kind"] == "accepted");
  CHECK(replay[0]["step"].is_null());
  CHECK(replay[1]["kind"] == "step_dispatched");
  CHECK(replay[1]["step"] == "reserve");
  CHECK(replay[1]["operation"]["steps"].size() == 2);
}
