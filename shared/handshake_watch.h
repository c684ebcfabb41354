#pragma once
// HandshakeWatch: a ZeroMQ socket monitor that turns failed handshakes into
// one clear log line each (issue 18: "remote-worker errors are loud"). A
// worker whose CURVE key the daemon refuses, or that has the wrong server
// key, or that speaks another protocol version, otherwise sees nothing at
// all: ZeroMQ retries quietly for ever.
//
// Owned by the thread that owns the watched socket; call poll() from it,
// often (it never blocks). ZeroMQ keeps retrying by itself, with the
// socket's reconnect backoff (ZMQ_RECONNECT_IVL_MAX).
#include <cstdint>
#include <memory>
#include <string>

#include <zmq.hpp>

namespace asyncops {

class HandshakeWatch {
 public:
  // what: the socket's role in the log ("events", "commands", ...).
  // A bound (server) socket logs refused peers instead of its own failure,
  // and leaves refused CURVE keys to the ZAP handler, which logs them. It
  // also counts a connection closed before its handshake succeeded: libzmq
  // 4.3 reports a wrong socket type (a version-1 PULL) only so.
  enum class Side { connecting, bound };
  HandshakeWatch(zmq::socket_t& socket, std::string what, std::string endpoint, Side side = Side::connecting);
  ~HandshakeWatch();
  // Reads the events that have arrived and logs failures: the first of each
  // cause at once, a repeat of it at most once a minute (with a count).
  void poll();
  // How many handshakes succeeded since the last call (several connections
  // may have come and gone between two polls).
  int take_connections();
  // Failed handshakes seen so far.
  uint64_t failures() const;

  // The cause of a failed handshake, for the log: what the event means.
  static std::string describe(int event, int value);

 private:
  struct Monitor;
  std::unique_ptr<Monitor> m;
};

}  // namespace asyncops
