#pragma once
// Tracker: the SUB socket that workers publish to. It decodes each message
// and hands events to the GroupCommitter, which moves the operation along
// (or, on an idle writer, commits them on the tracker's thread:
// GroupCommitter::commit_events).
// A frame that cannot be decoded, or that breaks the limits of
// docs/protocol.md ("Limits"), is refused: counted by kind and reason,
// logged (rate-limited), never fatal and never applied.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "daemon/group_commit.h"
#include "shared/envelope.h"
#include "shared/result.h"

namespace asyncops {

class Tracker {
 public:
  using HeartbeatHook = std::function<void(const Heartbeat&)>;
  Tracker(zmq::context_t& ctx, std::string endpoint, GroupCommitter& committer,
          HeartbeatHook on_heartbeat = nullptr);
  ~Tracker();

  // With CURVE: the services each worker key may serve (from the allow-list),
  // looked up by the User-Id the ZAP handler gives each connection. Call
  // before start().
  void set_key_services(std::map<std::string, std::set<std::string>> key_services) {
    m_key_services = std::move(key_services);
  }

  // Creates and binds the SUB socket; the tracker thread owns it afterwards.
  Status bind();
  // Set before bind(): applied to the socket before it binds (CURVE).
  std::function<void(zmq::socket_t&)> socket_setup;
  void start();
  void stop();

  // Messages that were not applied: undecodable, refused or of an unknown kind.
  uint64_t bad_frames() const { return m_bad_frames.load(); }
  // Messages refused by decoding, by kind (event, heartbeat) and reason.
  uint64_t refused(const char* kind, Refusal why) const;

 private:
  void run();
  void bad_frame(const std::string& why);
  void refuse(int kind, Refusal why, const std::string& error, const std::string& body);

  zmq::context_t& m_ctx;
  std::string m_endpoint;
  GroupCommitter& m_committer;
  HeartbeatHook m_on_heartbeat;
  std::map<std::string, std::set<std::string>> m_key_services;
  std::unique_ptr<zmq::socket_t> m_socket;  // owned by the tracker thread after start()
  std::atomic<bool> m_stopping{false};
  std::atomic<uint64_t> m_bad_frames{0};
  std::atomic<uint64_t> m_refused[2][k_refusal_count] = {};  // [0 event, 1 heartbeat][Refusal]
  int64_t m_refusal_log_second = 0;  // owned by the tracker thread: log rate limit
  int m_refusal_logs_this_second = 0;
  std::thread m_thread;
};

}  // namespace asyncops
