#include "tests/tools/tcp_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace asyncops::test {

namespace {

int connect_to(const std::string& host, int port) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

// Writes all of data to fd (blocking); false when the peer is gone.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

struct Pair {
  int a = -1, b = -1;  // a: the accepted client, b: the target
};

}  // namespace

TcpProxy::TcpProxy(std::string target_host, int target_port, int listen_port)
    : m_host(std::move(target_host)), m_target_port(target_port), m_port(listen_port) {}

TcpProxy::~TcpProxy() { stop(); }

Status TcpProxy::start() {
  m_listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (m_listen_fd < 0) return Error{std::string("cannot make a socket: ") + std::strerror(errno)};
  int one = 1;
  setsockopt(m_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(m_port));
  if (::bind(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_listen_fd, 64) != 0) {
    Error failed{"cannot listen on 127.0.0.1:" + std::to_string(m_port) + ": " + std::strerror(errno)};
    ::close(m_listen_fd);
    m_listen_fd = -1;
    return failed;
  }
  socklen_t len = sizeof addr;
  getsockname(m_listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  m_port = ntohs(addr.sin_port);
  m_thread = std::thread([this] { run(); });
  return Status::success();
}

void TcpProxy::stop() {
  m_stopping = true;
  if (m_thread.joinable()) m_thread.join();
  if (m_listen_fd >= 0) ::close(m_listen_fd);
  m_listen_fd = -1;
}

void TcpProxy::run() {
  std::vector<Pair> pairs;
  std::vector<char> buf(64 * 1024);
  auto close_pair = [](Pair& p) {
    if (p.a >= 0) ::close(p.a);
    if (p.b >= 0) ::close(p.b);
    p.a = p.b = -1;
  };
  while (!m_stopping) {
    if (m_cut) {
      // Read nothing, accept nothing, close nothing: a silent link.
      usleep(20 * 1000);
      continue;
    }
    std::vector<pollfd> fds;
    fds.push_back({m_listen_fd, POLLIN, 0});
    for (const Pair& p : pairs) {
      fds.push_back({p.a, POLLIN, 0});
      fds.push_back({p.b, POLLIN, 0});
    }
    int n = ::poll(fds.data(), fds.size(), 20);
    if (n <= 0 || m_cut) continue;
    if (fds[0].revents & POLLIN) {
      int a = ::accept4(m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (a >= 0) {
        int one = 1;
        setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int b = connect_to(m_host, m_target_port);
        if (b < 0) {
          ::close(a);
        } else {
          pairs.push_back({a, b});
          m_connections++;
        }
      }
    }
    for (size_t i = 0; i + 1 < fds.size() && i / 2 < pairs.size(); i += 2) {
      Pair& p = pairs[i / 2];
      for (int side = 0; side < 2 && p.a >= 0; ++side) {
        short ev = fds[1 + i + side].revents;
        if (!(ev & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = side == 0 ? p.a : p.b, to = side == 0 ? p.b : p.a;
        ssize_t r = ::recv(from, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0 || !write_all(to, buf.data(), static_cast<size_t>(r))) close_pair(p);
      }
    }
    for (size_t i = 0; i < pairs.size();) {
      if (pairs[i].a < 0) {
        pairs.erase(pairs.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }
  for (Pair& p : pairs) close_pair(p);
}

}  // namespace asyncops::test
