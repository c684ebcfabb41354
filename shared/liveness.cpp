#include "shared/liveness.h"

namespace asyncops {

void apply_liveness(zmq::socket_t& s, const std::string& endpoint, const LivenessOptions& o) {
  if (endpoint.rfind("tcp://", 0) != 0) return;
  if (o.heartbeat_ms > 0) {
    s.set(zmq::sockopt::heartbeat_ivl, o.heartbeat_ms);
    s.set(zmq::sockopt::heartbeat_timeout, o.heartbeat_timeout_ms);
    // The TTL asks the peer to drop the connection too when it hears nothing
    // for this long, so both ends notice, not only the one that pings.
    s.set(zmq::sockopt::heartbeat_ttl, o.heartbeat_timeout_ms);
  }
  if (o.tcp_keepalive_s > 0) {
    s.set(zmq::sockopt::tcp_keepalive, 1);
    s.set(zmq::sockopt::tcp_keepalive_idle, o.tcp_keepalive_s);
    s.set(zmq::sockopt::tcp_keepalive_intvl, 1);
    s.set(zmq::sockopt::tcp_keepalive_cnt, 3);
  }
}

std::string check_liveness(const LivenessOptions& o) {
  if (o.heartbeat_ms < 0 || o.heartbeat_timeout_ms < 0 || o.tcp_keepalive_s < 0) return "must not be negative";
  if (o.heartbeat_ms > 0 && o.heartbeat_timeout_ms < o.heartbeat_ms) {
    return "the heartbeat timeout must be at least the heartbeat interval";
  }
  // ZMQ_HEARTBEAT_TTL is carried in deciseconds in a 16-bit field.
  if (o.heartbeat_timeout_ms > 6553500) return "the heartbeat timeout is at most 6553.5 s";
  return "";
}

}  // namespace asyncops
