#include <catch2/catch.hpp>

#include <SQLiteCpp/SQLiteCpp.h>

#include "store_fixture.h"
#include "workers/services/users.h"
#include "workers/worker.h"

using namespace asyncops;
using namespace asyncops::test;

namespace {
struct Users {
  TempDir dir;
  Service svc = users_service();
  SQLite::Database db{dir.path + "/users.db", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
  Users() { Worker::init_database(svc, db); }

  Command cmd(const std::string& name, const std::string& id, nlohmann::json payload) {
    Command c;
    c.id = new_uuid_v7();
    c.name = name;
    c.service = "users";
    c.params = {{"id", id}};
    c.payload = std::move(payload);
    return c;
  }
  Event run(const Command& c) { return Worker::handle(svc, db, c, "w"); }
  int count() { return db.execAndGet("SELECT count(*) FROM users").getInt(); }
};
}  // namespace

TEST_CASE("create_user stores the user and returns its representation", "[users]") {
  Users u;
  auto e = u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  CHECK(e.state == OpState::completed);
  CHECK(e.type == "user_created");
  CHECK(e.code == "success");
  CHECK(e.resource == "/users/u1");
  CHECK(e.data["email"] == "a@example.com");
  CHECK(e.data["name"] == "Ann");
  // The representation is exactly the stored row.
  SQLite::Statement row(u.db, "SELECT id, email, name, created_at, updated_at FROM users WHERE id = 'u1'");
  REQUIRE(row.executeStep());
  CHECK(e.data == nlohmann::json{{"id", row.getColumn(0).getString()},
                                 {"email", row.getColumn(1).getString()},
                                 {"name", row.getColumn(2).getString()},
                                 {"created_at", row.getColumn(3).getString()},
                                 {"updated_at", row.getColumn(4).getString()}});
}

TEST_CASE("duplicate email is rejected with email_in_use, whatever its case", "[users]") {
  Users u;
  u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  auto e = u.run(u.cmd("create_user", "u2", {{"email", "A@Example.com"}, {"name", "Al"}}));
  CHECK(e.state == OpState::rejected);
  CHECK(e.code == "email_in_use");
  CHECK(e.type == "create_user_rejected");
  CHECK(u.count() == 1);
}

TEST_CASE("a malformed email is rejected with invalid_email", "[users]") {
  Users u;
  for (const char* bad : {"plain", "a@b", "@example.com", "a@@example.com", "a b@example.com",
                          "a@-example.com", "a..b@example.com"}) {
    auto e = u.run(u.cmd("create_user", "u1", {{"email", bad}, {"name", "A"}}));
    CHECK(e.code == "invalid_email");
  }
  CHECK(is_valid_email("first.last+tag@sub.example.co.uk"));
}

TEST_CASE("update and delete of a missing user are rejected with user_not_found", "[users]") {
  Users u;
  CHECK(u.run(u.cmd("update_user", "nope", {{"name", "B"}})).code == "user_not_found");
  CHECK(u.run(u.cmd("delete_user", "nope", {})).code == "user_not_found");
}

TEST_CASE("update changes fields and delete marks the resource deleted", "[users]") {
  Users u;
  u.run(u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}}));
  auto e = u.run(u.cmd("update_user", "u1", {{"name", "Anne"}}));
  CHECK(e.state == OpState::completed);
  CHECK(e.data["name"] == "Anne");
  CHECK(e.data["email"] == "a@example.com");
  e = u.run(u.cmd("delete_user", "u1", {}));
  CHECK(e.state == OpState::completed);
  CHECK(e.deleted);
  CHECK(e.resource == "/users/u1");
  CHECK(u.count() == 0);
}

TEST_CASE("a redelivered command re-publishes its outcome with no second effect", "[users]") {
  Users u;
  auto c = u.cmd("create_user", "u1", {{"email", "a@example.com"}, {"name", "Ann"}});
  auto first = u.run(c);
  c.attempt = 2;
  auto again = u.run(c);
  CHECK(again.state == first.state);
  CHECK(again.code == "success");
  CHECK(again.data == first.data);
  CHECK(again.attempt == 2);
  CHECK(u.count() == 1);
}

TEST_CASE("an unknown command fails with unknown_command", "[users]") {
  Users u;
  auto e = u.run(u.cmd("launch_rocket", "x", {}));
  CHECK(e.state == OpState::failed);
  CHECK(e.code == "unknown_command");
}
