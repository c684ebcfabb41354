#include "shared/handshake_watch.h"

#include <atomic>
#include <map>

#include "shared/clock.h"
#include "shared/log.h"

namespace asyncops {

namespace {
std::atomic<uint64_t> g_monitors{0};
}

std::string HandshakeWatch::describe(int event, int value) {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
      return value == 400 ? "the daemon refused this CURVE key: its public key is not on the daemon's "
                            "--curve-allowed-keys (or not for this service)"
                          : "the daemon refused the connection (ZAP status " + std::to_string(value) + ")";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      switch (value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
          return "security mismatch: one side uses CURVE and the other does not "
                 "(check --curve-server-key here and --curve-secret-key-file on the daemon)";
        case ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        case ZMQ_PROTOCOL_ERROR_ZMTP_KEY_EXCHANGE:
          return "the CURVE handshake failed: --curve-server-key is not the daemon's public key";
        case ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA:
          return "the peer's socket type does not fit: it speaks another asyncops protocol version "
                 "(a version-1 worker uses PULL; docs/protocol.md, Compatibility)";
        default: {
          char hex[16];
          snprintf(hex, sizeof hex, "0x%x", static_cast<unsigned>(value));
          return std::string("ZeroMQ protocol error ") + hex;
        }
      }
    case ZMQ_EVENT_DISCONNECTED:
      return "the peer closed the connection during the handshake: often a version-1 worker (PULL; "
             "docs/protocol.md, Compatibility), or a peer that is not asyncops";
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      return "the handshake failed without detail (often a wrong --curve-server-key, or a peer that is "
             "not asyncops)";
    default:
      return "event " + std::to_string(event);
  }
}

struct HandshakeWatch::Monitor : zmq::monitor_t {
  std::string what, endpoint;
  Side side = Side::connecting;
  int connections = 0;  // handshakes since the last take_connections()
  uint64_t failures = 0;
  struct Seen {
    int64_t logged_ms = 0;
    uint64_t since = 0;
  };
  std::map<std::string, Seen> seen;  // cause -> when last logged
  // Bound side: connections accepted (by fd) with no handshake success seen
  // since. libzmq 4.3 reports a wrong socket type (a version-1 PULL) with
  // no handshake event on either side, only a disconnect; the side that
  // reads the other's type first just closes. A success carries no fd, so
  // any success clears every mark: a failure may go uncounted, a success is
  // never counted as one.
  std::map<int, bool> handshaking;

  void failed(int event, int value) {
    ++failures;
    if (event != ZMQ_EVENT_DISCONNECTED) {
      for (auto& [fd, pending] : handshaking) pending = false;  // its disconnect follows: counted once
    }
    std::string cause = describe(event, value);
    Seen& s = seen[cause];
    int64_t now = now_ms();
    ++s.since;
    if (s.logged_ms != 0 && now - s.logged_ms < 60000) return;
    LogFields f{{"socket", what}, {"endpoint", endpoint}, {"cause", cause}};
    if (s.logged_ms != 0) f.push_back({"failures_since_last_line", std::to_string(s.since)});
    if (side == Side::bound) {
      if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return;  // the ZAP handler logs and counts these
      log_warn("refused a peer's handshake", f);
    } else {
      log_error("cannot connect: handshake refused; retrying with backoff", f);
    }
    s.logged_ms = now;
    s.since = 0;
  }
  void on_event_handshake_failed_no_detail(const zmq_event_t& e, const char*) override {
    failed(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, e.value);
  }
  void on_event_handshake_failed_protocol(const zmq_event_t& e, const char*) override {
    failed(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, e.value);
  }
  void on_event_handshake_failed_auth(const zmq_event_t& e, const char*) override {
    failed(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, e.value);
  }
  void on_event_handshake_succeeded(const zmq_event_t&, const char*) override {
    if (!seen.empty()) log_info("connected after all", {{"socket", what}, {"endpoint", endpoint}});
    seen.clear();
    ++connections;
    for (auto& [fd, pending] : handshaking) pending = false;
  }
  void on_event_accepted(const zmq_event_t& e, const char*) override { handshaking[e.value] = true; }
  void on_event_disconnected(const zmq_event_t& e, const char*) override {
    auto it = handshaking.find(e.value);
    if (it == handshaking.end()) return;
    bool failed_handshake = it->second;
    handshaking.erase(it);
    if (failed_handshake) failed(ZMQ_EVENT_DISCONNECTED, 0);
  }
};

HandshakeWatch::HandshakeWatch(zmq::socket_t& socket, std::string what, std::string endpoint, Side side)
    : m(std::make_unique<Monitor>()) {
  m->side = side;
  m->what = std::move(what);
  m->endpoint = std::move(endpoint);
  std::string addr = "inproc://asyncops-monitor-" + std::to_string(++g_monitors);
  int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
  if (side == Side::bound) events |= ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED;
  m->init(socket, addr, events);
}

HandshakeWatch::~HandshakeWatch() = default;

void HandshakeWatch::poll() {
  for (int i = 0; i < 100 && m->check_event(0); ++i) {
  }
}


int HandshakeWatch::take_connections() {
  int n = m->connections;
  m->connections = 0;
  return n;
}

uint64_t HandshakeWatch::failures() const { return m->failures; }

}  // namespace asyncops
