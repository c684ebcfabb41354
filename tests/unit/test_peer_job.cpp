#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "command_of.h"
#include "store_fixture.h"
#include "workers/services/peer_job.h"
#include "workers/worker.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {
struct PeerJob {
  TempDir dir;
  Service svc = peer_job_service();
  SQLite::Database db{dir.path + "/peer_job.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
  PeerJob() { Worker::init_database(svc, db); }

  Event run(const std::string& id, nlohmann::json payload) {
    Command c = command_of("run_job", "peer_job", "POST /users", "/users/" + id);
    if (!id.empty()) c.params = {{"id", id}};
    c.payload = std::move(payload);
    return Worker::handle(svc, db, c, "w");
  }
};
}  // namespace

TEST_CASE("run_job answers the id at the command's resource", "[peer_job]") {
  PeerJob p;
  Event e = p.run("j1", {{"email", "a@example.com"}, {"name", "Ann"}});
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "job_done");
  CHECK(e.resource == "/users/j1");
  CHECK(e.data == nlohmann::json{{"id", "j1"}});
  CHECK(find_service("peer_job") != nullptr);
}

TEST_CASE("run_job checks both fields as the peers' handler does", "[peer_job]") {
  PeerJob p;
  CHECK(p.run("j2", {{"email", "not an address"}, {"name", "Ann"}}).code == "invalid_email");
  CHECK(p.run("j3", {{"name", "Ann"}}).code == "invalid_email");
  CHECK(p.run("j4", {{"email", "a@example.com"}, {"name", ""}}).code == "invalid_name");
  CHECK(p.run("j5", {{"email", "a@example.com"}, {"name", 5}}).code == "invalid_name");
  Event no_id = p.run("", {{"email", "a@example.com"}, {"name", "Ann"}});
  CHECK(no_id.state == OpState::rejected);
  CHECK(no_id.code == "invalid_command");
}
