#include <catch2/catch.hpp>

#include <zmq.hpp>

#include "shared/handshake_watch.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;

// Issue 18: a version-1 worker (PULL) at a version-2 daemon (ROUTER). With
// libzmq 4.3 neither side gets a handshake event: the side that reads the
// other's socket type first closes the connection.
TEST_CASE("a bound socket counts a peer of the wrong socket type, and not a peer that connects",
          "[handshake_watch]") {
  TempDir dir;
  zmq::context_t ctx(1);
  std::string endpoint = "ipc://" + dir.path + "/commands.ipc";
  zmq::socket_t router(ctx, zmq::socket_type::router);
  router.set(zmq::sockopt::linger, 0);
  router.bind(endpoint);
  HandshakeWatch watch(router, "commands.users", endpoint, HandshakeWatch::Side::bound);

  {
    zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    eventually([&] {
      watch.poll();
      return watch.take_connections() > 0;
    });
  }  // and goes away after its handshake: not a failure
  zmq::socket_t pull(ctx, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.connect(endpoint);
  eventually([&] {
    watch.poll();
    return watch.failures() >= 1;
  });
  CHECK(watch.failures() == 1);
}
