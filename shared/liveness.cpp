#include "shared/liveness.h"

#include <algorithm>
#include <chrono>

#include "shared/duration.h"

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

Status check_liveness(const LivenessOptions& o) {
  if (o.heartbeat_ms < 0 || o.heartbeat_timeout_ms < 0 || o.tcp_keepalive_s < 0) return Error{"must not be negative"};
  if (o.heartbeat_ms > 0 && o.heartbeat_timeout_ms < o.heartbeat_ms) {
    return Error{"the heartbeat timeout must be at least the heartbeat interval"};
  }
  // ZMQ_HEARTBEAT_TTL is carried in deciseconds in a 16-bit field.
  if (o.heartbeat_timeout_ms > 6553500) return Error{"the heartbeat timeout is at most 6553.5 s"};
  return Status::success();
}

CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& v) {
        auto d = parse_duration(v);
        return d ? std::string() : d.error();
      },
      "DURATION");
}

void add_liveness_flags(CLI::App& app, LivenessFlags* flags, const std::string& timeout_help) {
  CLI::Validator duration = duration_validator();
  app.add_option("--zmq-heartbeat", flags->heartbeat,
                 "ZeroMQ heartbeat interval on tcp:// sockets, to notice a cut link (0: off)")
      ->envname("ASYNCOPS_ZMQ_HEARTBEAT")
      ->check(duration);
  app.add_option("--zmq-heartbeat-timeout", flags->heartbeat_timeout, timeout_help)
      ->envname("ASYNCOPS_ZMQ_HEARTBEAT_TIMEOUT")
      ->check(duration);
  app.add_option("--tcp-keepalive", flags->tcp_keepalive, "TCP keepalive idle time on tcp:// sockets (0: off)")
      ->envname("ASYNCOPS_TCP_KEEPALIVE")
      ->check(duration);
}

Result<LivenessOptions> liveness_from(const LivenessFlags& flags) {
  // Each passed duration_validator(); one that did not counts as 0 (off).
  auto ms = [](const std::string& text) {
    auto d = parse_duration(text);
    return d ? d.value() : std::chrono::milliseconds{0};
  };
  std::chrono::milliseconds ivl = ms(flags.heartbeat), timeout = ms(flags.heartbeat_timeout),
                            keepalive = ms(flags.tcp_keepalive);
  LivenessOptions o;
  o.heartbeat_ms = static_cast<int>(std::min<int64_t>(ivl.count(), 3600000));
  o.heartbeat_timeout_ms = static_cast<int>(std::min<int64_t>(timeout.count(), 3600000));
  o.tcp_keepalive_s = static_cast<int>(std::min<int64_t>((keepalive.count() + 999) / 1000, 86400));
  if (auto usable = check_liveness(o); !usable) {
    return Error{"--zmq-heartbeat/--zmq-heartbeat-timeout/--tcp-keepalive: " + usable.error()};
  }
  return o;
}

}  // namespace asyncops
