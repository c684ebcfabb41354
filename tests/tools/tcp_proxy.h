#pragma once
// TcpProxy: forwards TCP connections from a local port to a target, and can
// cut the link without closing it (issue 18). While cut it reads nothing
// and accepts nothing, but keeps every socket open: both ends see a live
// connection that carries no bytes, as when a host is unplugged or a
// firewall drops packets. Bytes written meanwhile wait in the kernel's
// buffers and flow when the link is restored, as after a real outage.
// No root, no network namespaces.
//
// One thread per proxy, started by start(); cut()/restore() are
// thread-safe.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "shared/result.h"

namespace asyncops::test {

class TcpProxy {
 public:
  // Forwards 127.0.0.1:listen_port (0: any free port) to target_host:target_port.
  TcpProxy(std::string target_host, int target_port, int listen_port = 0);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  // Binds and starts forwarding; an error names the port and the reason.
  Status start();
  void stop();
  int port() const { return m_port; }
  void cut() { m_cut = true; }
  void restore() { m_cut = false; }
  bool is_cut() const { return m_cut; }
  uint64_t connections() const { return m_connections.load(); }

 private:
  void run();
  std::string m_host;
  int m_target_port;
  int m_port;
  int m_listen_fd = -1;
  std::atomic<bool> m_cut{false}, m_stopping{false};
  std::atomic<uint64_t> m_connections{0};
  std::thread m_thread;
};

}  // namespace asyncops::test
