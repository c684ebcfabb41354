#include <catch2/catch.hpp>

#include "daemon/daemon.h"

using namespace asyncops;

TEST_CASE("dispatch endpoints default to ipc sockets in the data dir", "[daemon]") {
  auto r = resolve_dispatch({}, {"users"}, "/d");
  REQUIRE(r.ok());
  CHECK(r.value().at("users") == "ipc:///d/commands.users.ipc");
}

TEST_CASE("dispatch endpoints can be named per service or templated", "[daemon]") {
  auto r = resolve_dispatch({"users=tcp://*:5557", "ipc:///x/{service}.ipc"}, {"users", "mail"}, "/d");
  REQUIRE(r.ok());
  CHECK(r.value().at("users") == "tcp://*:5557");
  CHECK(r.value().at("mail") == "ipc:///x/mail.ipc");
  CHECK_FALSE(resolve_dispatch({"tcp://*:1"}, {"users", "mail"}, "/d").ok());
  CHECK_FALSE(resolve_dispatch({"nosuch=tcp://*:1"}, {"users"}, "/d").ok());
}
