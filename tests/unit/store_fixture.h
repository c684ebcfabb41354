#pragma once
// Helpers shared by the unit tests: a store in a fresh temp dir (removed
// afterwards), records and events to put in it, a committer in front of it,
// and a poll with a deadline.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "daemon/change_hub.h"
#include "daemon/group_commit.h"
#include "store/sqlite_store.h"
#include "shared/clock.h"
#include "shared/ids.h"

namespace asyncops::test {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/asyncops-unit-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

inline OperationRecord new_op(const std::string& name = "create_user") {
  OperationRecord op;
  op.id = new_uuid_v7();
  op.name = name;
  op.service = "users";
  op.origin = "POST /users";
  op.resource = "/users/" + new_uuid_v7();
  op.params = {{"id", op.resource.substr(7)}};
  op.payload = {{"email", "a@example.com"}, {"name", "A"}};
  op.created_at = op.updated_at = now_ms();
  return op;
}

inline Event event_for(const OperationRecord& op, OpState state, const std::string& code = "") {
  Event e;
  e.request_id = op.id;
  e.state = state;
  e.code = code;
  e.type = "t";
  e.resource = op.resource;
  return e;
}

// Polls until pred() holds, failing the test after 10 s: for tests that
// wait on another thread without an event to wait for.
template <class Pred>
void eventually(Pred pred) {
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10); !pred();) {
    REQUIRE(std::chrono::steady_clock::now() < deadline);
    std::this_thread::yield();
  }
}

inline Heartbeat heartbeat_from(const std::string& worker) {
  Heartbeat h;
  h.worker = worker;
  h.service = "users";
  h.host = "host";
  h.pid = 1;
  h.time = "2026-01-01T00:00:00.000Z";
  return h;
}

// A store in a temp dir with a committer in front of it that publishes its
// changes to a hub, and a reader pool: what the gateway and streams run on.
struct StoreWithHub {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  ChangeHub hub;
  GroupCommitter gc{std::move(SqliteStoreWriter::open(path, SyncMode::normal).value()),
                    {[this](const std::vector<Change>& c) { hub.publish(c); }, [](std::vector<Command>) {}}};
  ReaderPool readers{path};
};

// A StoreWithHub whose committer runs, and helpers that accept and finish an
// operation and return once the hub has published it: what the push channels
// (SignalR, /ws) are tested on.
struct RunningStoreWithHub : StoreWithHub {
  RunningStoreWithHub() { gc.start(); }
  ~RunningStoreWithHub() {
    hub.shutdown();
    gc.stop();
  }
  OperationRecord accept(const std::string& owner, const std::string& name = "create_user") {
    auto op = new_op(name);
    op.owner = owner;
    auto c = gc.accept(op);
    REQUIRE(c);
    published_past(c->seq - 1);
    return op;
  }
  // The committer answers before it publishes: wait for the hub to have it.
  void published_past(int64_t seq) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (hub.latest_seq() <= seq && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }
  void finish(const OperationRecord& op) {
    int64_t before = hub.latest_seq();
    Event e = event_for(op, OpState::completed);
    e.data = {{"id", "x"}};
    REQUIRE(gc.run([e](StoreWriter& w, std::vector<Change>& changes) {
      Change c;
      if (w.apply_event(e, now_ms(), &c) == StoreWriter::Applied::changed) changes.push_back(std::move(c));
    }));
    published_past(before);
  }
};

}  // namespace asyncops::test
