#include "shared/curve.h"

#include <fstream>
#include <sstream>

#include <zmq_addon.hpp>

#include "shared/log.h"

namespace asyncops {

bool curve_available() { return zmq_has("curve") != 0; }

Result<CurveKeyPair> curve_keypair() {
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) return Error{"zmq_curve_keypair failed: libzmq has no CURVE support"};
  return CurveKeyPair{pub, sec};
}

Result<std::string> curve_public_of(const std::string& secret_z85) {
  char pub[41] = {};
  if (secret_z85.size() != 40 || zmq_curve_public(pub, secret_z85.c_str()) != 0) {
    return Error{"not a Z85 CURVE secret key (40 characters)"};
  }
  return std::string(pub);
}

namespace {
bool looks_z85(const std::string& k) {
  if (k.size() != 40) return false;
  uint8_t raw[32];
  return zmq_z85_decode(raw, k.c_str()) != nullptr;
}
}  // namespace

Result<std::string> read_curve_key(const std::string& path, const std::string& which) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + path};
  std::string bare;
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    std::string a, b;
    f >> a >> b;
    if (a.empty() || (a[0] == '#' && !looks_z85(a))) continue;
    if (a == which + "-key" && looks_z85(b)) return b;
    if (b.empty() && looks_z85(a)) bare = a;
  }
  if (!bare.empty()) return bare;
  return Error{path + ": no " + which + " key (a line '" + which + "-key KEY' or the bare Z85 key)"};
}

Result<AllowedKeys> read_allowed_keys(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{"cannot read " + path};
  AllowedKeys out;
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    std::istringstream f(line);
    std::string a;
    f >> a;
    if (a.empty() || (a[0] == '#' && !looks_z85(a))) continue;
    std::string key = a;
    if (a == "public-key") f >> key;
    if (!looks_z85(key)) return Error{path + " line " + std::to_string(n) + ": not a Z85 public key"};
    std::set<std::string>& services = out[key];
    for (std::string service; f >> service;) {
      if (service[0] == '#') break;
      services.insert(service);
    }
  }
  return out;
}

void make_curve_server(zmq::socket_t& s, const std::string& secret_z85) {
  s.set(zmq::sockopt::curve_server, 1);
  s.set(zmq::sockopt::curve_secretkey, secret_z85);
  s.set(zmq::sockopt::zap_domain, "asyncops");
}

void make_curve_client(zmq::socket_t& s, const CurveKeyPair& mine, const std::string& server_public_z85) {
  s.set(zmq::sockopt::curve_serverkey, server_public_z85);
  s.set(zmq::sockopt::curve_publickey, mine.public_key);
  s.set(zmq::sockopt::curve_secretkey, mine.secret_key);
}

ZapHandler::ZapHandler(zmq::context_t& ctx, AllowedKeys allowed)
    : m_ctx(ctx), m_allowed(std::move(allowed)) {}

ZapHandler::~ZapHandler() { stop(); }

Status ZapHandler::start() {
  try {
    m_socket = std::make_unique<zmq::socket_t>(m_ctx, zmq::socket_type::rep);
    m_socket->set(zmq::sockopt::linger, 0);
    m_socket->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    return Error{std::string("cannot bind the ZAP handler: ") + e.what()};
  }
  m_thread = std::thread([this] { run(); });
  return Status::success();
}

void ZapHandler::stop() {
  m_stopping = true;
  if (m_thread.joinable()) m_thread.join();
  m_socket.reset();
}

void ZapHandler::run() {
  while (!m_stopping) {
    zmq::pollitem_t item{m_socket->handle(), 0, ZMQ_POLLIN, 0};
    try {
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
      std::vector<zmq::message_t> req;
      if (!zmq::recv_multipart(*m_socket, std::back_inserter(req))) continue;
      // version, request id, domain, address, identity, mechanism, credentials...
      std::string version = req.size() > 0 ? req[0].to_string() : "";
      std::string request_id = req.size() > 1 ? req[1].to_string() : "";
      std::string address = req.size() > 3 ? req[3].to_string() : "";
      std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
      std::string key;
      if (mechanism == "CURVE" && req.size() > 6 && req[6].size() == 32) {
        char z85[41] = {};
        zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
        key = z85;
      }
      bool ok = version == "1.0" && !key.empty() && m_allowed.count(key) > 0;
      if (ok) {
        m_accepted++;
      } else {
        uint64_t n = ++m_rejected;
        if (n <= 20 || n % 1000 == 0) {
          log_warn("CURVE key not allowed; connection refused",
                   {{"address", address}, {"mechanism", mechanism}, {"key", key}, {"count", std::to_string(n)}});
        }
      }
      // The frames' text must outlive the send (zmq::buffer does not copy).
      const std::string v = "1.0", status = ok ? "200" : "400", text = ok ? "OK" : "key not allowed",
                        user = ok ? key : std::string(), metadata;
      std::array<zmq::const_buffer, 6> reply = {zmq::buffer(v),    zmq::buffer(request_id), zmq::buffer(status),
                                                zmq::buffer(text), zmq::buffer(user),       zmq::buffer(metadata)};
      zmq::send_multipart(*m_socket, reply);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR || e.num() == ETERM) {
        if (e.num() == ETERM) return;
        continue;
      }
      log_error("ZAP handler error", {{"error", e.what()}});
    }
  }
}

}  // namespace asyncops
