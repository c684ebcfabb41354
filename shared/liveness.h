#pragma once
// Dead-peer detection for ZeroMQ sockets over tcp:// (issue 18;
// docs/protocol.md §4a, "Dead-peer detection"). A link cut without being
// closed shows no error to either end, so every tcp socket of the daemon and
// of the built-in worker pings its peers (ZMTP heartbeats) and asks the
// kernel for TCP keepalive. ipc:// and inproc:// sockets are left alone.
#include <string>

#include <CLI/CLI.hpp>
#include <zmq.hpp>

#include "shared/result.h"

namespace asyncops {

struct LivenessOptions {
  int heartbeat_ms = 500;           // ZMQ_HEARTBEAT_IVL; 0: off
  int heartbeat_timeout_ms = 1500;  // ZMQ_HEARTBEAT_TIMEOUT and _TTL
  int tcp_keepalive_s = 10;         // ZMQ_TCP_KEEPALIVE_IDLE (intvl 1 s, 3 probes); 0: off
};

// Sets the options on s when endpoint is tcp:// (before bind or connect).
// Throws zmq::error_t only for an option libzmq does not know.
void apply_liveness(zmq::socket_t& s, const std::string& endpoint, const LivenessOptions& options);

// Whether options are usable; the error says why not.
Status check_liveness(const LivenessOptions& options);

// --zmq-heartbeat, --zmq-heartbeat-timeout and --tcp-keepalive as given, for
// the daemon and the built-in worker alike.
struct LivenessFlags {
  std::string heartbeat = "500ms", heartbeat_timeout = "1500ms", tcp_keepalive = "10s";
};
// The check of every duration flag (DURATION: 250ms, 30s, 5m, 7d...): the
// error is parse_duration's.
CLI::Validator duration_validator();
// Adds the three flags (and their ASYNCOPS_* variables) to app, each checked
// with duration_validator(). timeout_help says what this side does with a
// silent connection.
void add_liveness_flags(CLI::App& app, LivenessFlags* flags, const std::string& timeout_help);
// The options the flags give (REQUIRES: each passed duration), or why they
// are not usable, naming the flags.
Result<LivenessOptions> liveness_from(const LivenessFlags& flags);

}  // namespace asyncops
