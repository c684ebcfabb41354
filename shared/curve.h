#pragma once
// ZeroMQ CURVE for workers over tcp:// (issue 7). The daemon's ROUTER
// (commands), SUB (events) and control PUB sockets are CURVE servers; a ZAP
// handler (inproc://zeromq.zap.01, its own thread) admits only the worker
// public keys on an allow-list. Workers are CURVE clients that know the
// daemon's public key. Keys are Z85 text (40 characters).
#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "shared/result.h"

namespace asyncops {

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

bool curve_available();  // zmq_has("curve")
Result<CurveKeyPair> curve_keypair();
// The public key of a Z85 secret key.
Result<std::string> curve_public_of(const std::string& secret_z85);

// Reads a key from a file written by `asyncops keygen` (the line
// "secret-key KEY" or "public-key KEY", per `which`) or holding the bare key.
Result<std::string> read_curve_key(const std::string& path, const std::string& which);
// An allow-list: one Z85 public key per line ("public-key KEY" also
// accepted); '#' comments.
// The allow-list: one key per line (or "public-key KEY"), optionally followed
// by the services that key may serve; no services means any service.
using AllowedKeys = std::map<std::string, std::set<std::string>>;
Result<AllowedKeys> read_allowed_keys(const std::string& path);

// Makes s a CURVE server (before bind). The ZAP domain is "asyncops".
void make_curve_server(zmq::socket_t& s, const std::string& secret_z85);
// Makes s a CURVE client of a server with server_public_z85 (before connect).
void make_curve_client(zmq::socket_t& s, const CurveKeyPair& mine, const std::string& server_public_z85);

// The ZAP handler: admits a CURVE client whose public key is allowed.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& ctx, AllowedKeys allowed);
  ~ZapHandler();
  // Binds inproc://zeromq.zap.01 and starts the thread; before any CURVE bind.
  Status start();
  void stop();
  uint64_t accepted() const { return m_accepted.load(); }
  uint64_t rejected() const { return m_rejected.load(); }

 private:
  void run();
  zmq::context_t& m_ctx;
  AllowedKeys m_allowed;
  std::unique_ptr<zmq::socket_t> m_socket;  // owned by the thread after start()
  std::atomic<bool> m_stopping{false};
  std::atomic<uint64_t> m_accepted{0}, m_rejected{0};
  std::thread m_thread;
};

}  // namespace asyncops
