#pragma once
// Dead-peer detection for ZeroMQ sockets over tcp:// (issue 18;
// docs/protocol.md §4a, "Dead-peer detection"). A link cut without being
// closed shows no error to either end, so every tcp socket of the daemon and
// of the built-in worker pings its peers (ZMTP heartbeats) and asks the
// kernel for TCP keepalive. ipc:// and inproc:// sockets are left alone.
#include <string>

#include <zmq.hpp>

namespace asyncops {

struct LivenessOptions {
  int heartbeat_ms = 500;           // ZMQ_HEARTBEAT_IVL; 0: off
  int heartbeat_timeout_ms = 1500;  // ZMQ_HEARTBEAT_TIMEOUT and _TTL
  int tcp_keepalive_s = 10;         // ZMQ_TCP_KEEPALIVE_IDLE (intvl 1 s, 3 probes); 0: off
};

// Sets the options on s when endpoint is tcp:// (before bind or connect).
// Throws zmq::error_t only for an option libzmq does not know.
void apply_liveness(zmq::socket_t& s, const std::string& endpoint, const LivenessOptions& options);

// "" if options are usable, else why not (for a flag's check).
std::string check_liveness(const LivenessOptions& options);

}  // namespace asyncops
