// The SignalR hub's protocol (daemon/signalr_hub.h) without sockets.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "daemon/signalr_hub.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

namespace {

const std::string RS(1, k_signalr_record_separator);

using Fixture = RunningStoreWithHub;

// Splits records and parses each.
std::vector<json> records(const std::vector<std::string>& messages) {
  std::vector<json> out;
  for (const auto& m : messages) {
    REQUIRE(!m.empty());
    REQUIRE(m.back() == k_signalr_record_separator);
    size_t start = 0;
    for (size_t end; (end = m.find(k_signalr_record_separator, start)) != std::string::npos; start = end + 1) {
      out.push_back(json::parse(m.substr(start, end - start)));
    }
  }
  return out;
}

std::vector<json> send(HubConnection& c, const std::string& payload) {
  std::vector<std::string> out;
  c.on_message(payload, &out);
  return records(out);
}

std::vector<json> drain(HubConnection& c) {
  std::vector<std::string> out;
  while (c.poll(&out, 100) && out.size() < 10000) {
  }
  return records(out);
}

std::string invocation(const std::string& id, const std::string& target, json args) {
  return json{{"type", 1}, {"invocationId", id}, {"target", target}, {"arguments", args}}.dump() + RS;
}

const std::string k_handshake = R"({"protocol":"json","version":1})" + RS;

}  // namespace

TEST_CASE("signalr: negotiate answers version 1 with a connection token and both transports", "[signalr]") {
  Fixture f;
  SignalrHub hub(f.hub, f.readers);
  auto n = hub.negotiate("ann", {});
  REQUIRE(n);
  CHECK((*n)["negotiateVersion"] == 1);
  std::string token = (*n)["connectionToken"];
  CHECK(token.size() == 43);
  CHECK((*n)["connectionId"] != token);
  CHECK((*n)["availableTransports"].size() == 2);
  CHECK((*n)["availableTransports"][0]["transport"] == "WebSockets");
  CHECK((*n)["availableTransports"][1]["transport"] == "ServerSentEvents");
  CHECK((*n)["availableTransports"][1]["transferFormats"] == json::array({"Text"}));
  REQUIRE(hub.find(token, "ann"));
  CHECK_FALSE(hub.find(token, "bob"));  // bound to its principal
  CHECK_FALSE(hub.find("made-up", "ann"));
  auto c = hub.find(token, "ann");
  CHECK(c->claim());
  CHECK_FALSE(c->claim());  // one transport per connection
  hub.remove(token);
  CHECK_FALSE(hub.find(token, "ann"));
  CHECK(c->closed());
}

TEST_CASE("signalr: the handshake, then Subscribe brings operationUpdated for each change", "[signalr]") {
  Fixture f;
  SignalrHub hub(f.hub, f.readers);
  auto op = f.accept("ann");
  auto c = hub.find((*hub.negotiate("ann", {}))["connectionToken"], "ann");
  REQUIRE(c);
  REQUIRE(c->claim());
  // Nothing but the handshake is answered before it.
  auto hello = send(*c, k_handshake);
  REQUIRE(hello.size() == 1);
  CHECK(hello[0] == json::object());
  auto ack = send(*c, invocation("1", "Subscribe", {op.id}));
  REQUIRE(ack.size() == 1);
  CHECK(ack[0] == json({{"type", 3}, {"invocationId", "1"}}));
  auto first = drain(*c);
  REQUIRE(first.size() == 1);
  CHECK(first[0]["type"] == 1);
  CHECK(first[0]["target"] == "operationUpdated");
  CHECK(first[0]["arguments"][0]["id"] == op.id);
  CHECK(first[0]["arguments"][0]["state"] == "pending");
  // Only the operation: the WebSocket frame's kind and step are not arguments.
  CHECK(first[0]["arguments"].size() == 1);
  CHECK_FALSE(first[0]["arguments"][0].contains("kind"));
  CHECK_FALSE(first[0].contains("invocationId"));  // a non-blocking invocation
  f.finish(op);
  auto last = drain(*c);
  REQUIRE(last.size() == 1);
  CHECK(last[0]["arguments"][0]["state"] == "completed");
}

TEST_CASE("signalr: Subscribe with lastEventId 0 replays every change: errors are completions", "[signalr]") {
  Fixture f;
  SignalrHub hub(f.hub, f.readers);
  auto op = f.accept("ann");
  f.finish(op);
  auto c = hub.find((*hub.negotiate("ann", {}))["connectionToken"], "ann");
  c->claim();
  send(*c, k_handshake);
  // Two records in one message, as a client may batch them.
  auto acks = send(*c, invocation("1", "subscribe", {op.id, 0}) + invocation("2", "Subscribe", {op.id}));
  REQUIRE(acks.size() == 2);
  CHECK(acks[0] == json({{"type", 3}, {"invocationId", "1"}}));
  CHECK(acks[1]["invocationId"] == "2");
  CHECK(acks[1]["error"].get<std::string>().find("already_subscribed") != std::string::npos);
  auto all = drain(*c);
  REQUIRE(all.size() == 2);
  CHECK(all[0]["arguments"][0]["state"] == "pending");
  CHECK(all[1]["arguments"][0]["state"] == "completed");
  auto unknown = send(*c, invocation("3", "Subscribe", {"01900000-0000-7000-8000-000000000000"}));
  CHECK(unknown[0]["error"].get<std::string>().find("operation_not_found") != std::string::npos);
  auto no_method = send(*c, invocation("4", "Explode", json::array()));
  CHECK(no_method[0]["error"].get<std::string>().find("unknown hub method") != std::string::npos);
  auto stream = send(*c, json{{"type", 4}, {"invocationId", "5"}, {"target", "Subscribe"}}.dump() + RS);
  CHECK(stream[0]["error"] == "no hub method streams");
  CHECK(send(*c, R"({"type":6})" + RS).empty());  // a ping needs no answer
  CHECK_FALSE(c->finished());
}

TEST_CASE("signalr: SubscribeAll follows a filter, owner-scoped, until Unsubscribe", "[signalr]") {
  Fixture f;
  SignalrHub hub(f.hub, f.readers);
  WebSocketGrant ann_only;
  ann_only.owner = "ann";
  auto c = hub.find((*hub.negotiate("ann", ann_only))["connectionToken"], "ann");
  c->claim();
  send(*c, k_handshake);
  auto ack = send(*c, invocation("1", "SubscribeAll", {{{"name", "create_user"}}}));
  CHECK(ack[0] == json({{"type", 3}, {"invocationId", "1"}}));
  auto mine = f.accept("ann");
  f.accept("bob");
  f.accept("ann", "delete_user");
  auto seen = drain(*c);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0]["arguments"][0]["id"] == mine.id);
  auto bad = send(*c, invocation("2", "SubscribeAll", {{{"state", "sleeping"}}}));
  CHECK(bad[0].contains("error"));
  auto gone = send(*c, invocation("3", "Unsubscribe", {{{"name", "create_user"}}}));
  CHECK(gone[0] == json({{"type", 3}, {"invocationId", "3"}}));
  f.accept("ann");
  CHECK(drain(*c).empty());
}

TEST_CASE("signalr: a bad handshake or record closes with an error: a quiet connection is pinged", "[signalr]") {
  Fixture f;
  SignalrOptions o;
  o.ping_interval = std::chrono::milliseconds(50);
  SignalrHub hub(f.hub, f.readers, o);
  auto msgpack = hub.find((*hub.negotiate("", {}))["connectionToken"], "");
  auto refused = send(*msgpack, R"({"protocol":"messagepack","version":1})" + RS);
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].contains("error"));
  CHECK(msgpack->finished());

  auto c = hub.find((*hub.negotiate("", {}))["connectionToken"], "");
  c->claim();
  std::atomic<int> wakes{0};
  c->set_wake([&wakes] { ++wakes; });
  send(*c, k_handshake);
  // The hub's timer wakes the transport once a ping is due; poll sends it.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (wakes == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(wakes > 0);
  auto ping = drain(*c);
  REQUIRE(ping.size() == 1);
  CHECK(ping[0] == json({{"type", 6}}));
  auto broken = send(*c, "not json" + RS);
  REQUIRE(broken.size() == 1);
  CHECK(broken[0]["type"] == 7);
  CHECK(c->finished());
  // A close from the client finishes it too.
  auto d = hub.find((*hub.negotiate("", {}))["connectionToken"], "");
  send(*d, k_handshake);
  CHECK(send(*d, R"({"type":7})" + RS).empty());
  CHECK(d->finished());
}

TEST_CASE("signalr: the SSE transport's POSTed records are answered through poll, waking it", "[signalr]") {
  Fixture f;
  SignalrHub hub(f.hub, f.readers);
  auto op = f.accept("");
  std::string token = (*hub.negotiate("", {}))["connectionToken"];
  auto c = hub.find(token, "");
  c->claim();
  std::atomic<int> wakes{0};
  auto channel = hub.transport(c)([&wakes] { ++wakes; });
  c->receive(k_handshake + invocation("7", "Subscribe", {op.id}));
  CHECK(wakes > 0);
  std::vector<std::string> out;
  while (channel->poll(&out, 100)) {
  }
  auto got = records(out);
  REQUIRE(got.size() == 3);
  CHECK(got[0] == json::object());
  CHECK(got[1]["invocationId"] == "7");
  CHECK(got[2]["target"] == "operationUpdated");
  // The transport's end forgets the connection.
  channel.reset();
  CHECK_FALSE(hub.find(token, ""));
  CHECK(c->closed());
}
