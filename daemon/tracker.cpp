#include "daemon/tracker.h"
#include "shared/timeline.h"

#include <zmq_addon.hpp>

#include "daemon/zmq_bind.h"
#include "shared/clock.h"
#include "shared/log.h"
#include "shared/named_thread.h"

namespace asyncops {

Tracker::Tracker(zmq::context_t& ctx, std::string endpoint, GroupCommitter& committer,
                 HeartbeatHook on_heartbeat)
    : m_ctx(ctx),
      m_endpoint(std::move(endpoint)),
      m_committer(committer),
      m_on_heartbeat(std::move(on_heartbeat)) {}

Tracker::~Tracker() { stop(); }

Status Tracker::bind() {
  try {
    m_socket = std::make_unique<zmq::socket_t>(m_ctx, zmq::socket_type::sub);
    m_socket->set(zmq::sockopt::linger, 0);
    m_socket->set(zmq::sockopt::rcvhwm, 100000);
    m_socket->set(zmq::sockopt::subscribe, "");
    // A frame this large is not even received: ZeroMQ closes the peer's
    // connection. Up to it, decode_event() refuses and counts what is over
    // the 1 MiB event limit.
    m_socket->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(k_max_transport_bytes));
    bind_owner_only(*m_socket, m_endpoint, socket_setup);
  } catch (const zmq::error_t& e) {
    return Error{"cannot bind events endpoint " + m_endpoint + ": " + e.what()};
  }
  return Status::success();
}

void Tracker::start() { m_thread = named_thread("aops-tracker", [this] { run(); }); }

void Tracker::stop() {
  m_stopping = true;
  if (m_thread.joinable()) m_thread.join();
  m_socket.reset();
}

void Tracker::bad_frame(const std::string& why) {
  uint64_t n = ++m_bad_frames;
  if (n <= 10 || n % 1000 == 0) {
    log_warn("undecodable message on the events socket", {{"error", why}, {"count", std::to_string(n)}});
  }
}

namespace {
const char* const k_refusal_kinds[2] = {k_kind_event, k_kind_heartbeat};
}

uint64_t Tracker::refused(const char* kind, Refusal why) const {
  for (int k = 0; k < 2; ++k) {
    if (std::string(kind) == k_refusal_kinds[k]) return m_refused[k][static_cast<int>(why)].load();
  }
  return 0;
}

void Tracker::refuse(int kind, Refusal why, const std::string& error, const std::string& body) {
  m_refused[kind][static_cast<int>(why)]++;
  uint64_t n = ++m_bad_frames;
  // At most 5 lines a second, so that a flood of bad messages cannot flood
  // the log; the counters keep the full count.
  int64_t second = now_ms() / 1000;
  if (second != m_refusal_log_second) {
    m_refusal_log_second = second;
    m_refusal_logs_this_second = 0;
  }
  if (++m_refusal_logs_this_second > 5) return;
  LogFields fields{{"kind", k_refusal_kinds[kind]},
                   {"reason", to_string(why)},
                   {"error", error.substr(0, 200)},
                   {"bytes", std::to_string(body.size())},
                   {"count", std::to_string(n)}};
  std::string id = peek_request_id(body);
  if (!id.empty()) fields.push_back({"request_id", id});
  log_warn("refused a message on the events socket", fields);
}

void Tracker::run() {
  std::vector<zmq::message_t> parts;
  while (!m_stopping) {
    zmq::pollitem_t item{m_socket->handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      log_error("poll on the events socket failed", {{"error", e.what()}});
      continue;
    }
    // Drain what is there without waiting, and hand the events over at once.
    std::vector<GroupCommitter::ReceivedEvent> events;
    for (int drained = 0; drained < 4096; ++drained) {
      parts.clear();
      std::optional<size_t> n;
      try {
        n = zmq::recv_multipart(*m_socket, std::back_inserter(parts), zmq::recv_flags::dontwait);
      } catch (const zmq::error_t& e) {
        bad_frame(e.what());
        break;
      }
      if (!n) break;
      if (parts.size() != 2) {
        bad_frame("expected 2 frames, got " + std::to_string(parts.size()));
        continue;
      }
      std::string kind = parts[0].to_string();
      std::string body = parts[1].to_string();
      if (kind == k_kind_event) {
        Refusal why = Refusal::malformed;
        auto e = decode_event(body, &why);
        if (!e) {
          refuse(0, why, e.error(), body);
          continue;
        }
        timeline_mark(e->state == OpState::processing ? "processing_received" : "outcome_received", e->request_id);
        GroupCommitter::ReceivedEvent& received = events.emplace_back();
        received.event = std::move(e.value());
        if (!m_key_services.empty()) {
          // The key the ZAP handler authenticated this connection with.
          std::string key;
          try {
            const char* uid = parts[1].gets("User-Id");
            if (uid) key = uid;
          } catch (const zmq::error_t&) {
            // No User-Id: not a CURVE connection.
          }
          auto it = m_key_services.find(key);
          if (it != m_key_services.end()) received.sender.services.assign(it->second.begin(), it->second.end());
        }
      } else if (kind == k_kind_heartbeat) {
        Refusal why = Refusal::malformed;
        auto h = decode_heartbeat(body, &why);
        if (!h) {
          refuse(1, why, h.error(), body);
          continue;
        }
        if (m_on_heartbeat) m_on_heartbeat(h.value());
      } else {
        bad_frame("unknown kind '" + kind.substr(0, 32) + "'");
      }
    }
    m_committer.commit_events(events);
  }
}

}  // namespace asyncops
