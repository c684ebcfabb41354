// What a message between two processes costs over ZeroMQ and over a plain
// Unix socket (issue 11): the question behind replacing the worker
// connection's transport. See bench/README.md ("ZeroMQ against a Unix
// socket").
//
//   asyncops-bench-transport [--n N] [--rate R] [--window W] [--bytes B] [--rounds K] [--dir DIR]
//
// Each round runs both transports, one after the other, in alternating
// order: a client process sends a message of B bytes (default 400, about an
// asyncops command), a server process sends it back, N times (default
// 20,000), at R round trips a second (default 0: back to back; 200 is the
// latency probe's pace, where each message wakes sleeping threads), with
// W messages in flight (default 1; more makes a pipeline, where ZeroMQ
// batches: then the CPU per message is the figure, and "round trip" is
// from a message's send to its echo's arrival).
//   zmq: DEALER -> ROUTER over ipc://, as the worker and the dispatcher
//        (libzmq's I/O thread on each side, one context each).
//   uds: a SOCK_STREAM Unix socket, a 4-byte length before each message,
//        blocking reads and writes on the processes' own threads.
// With W > 1 both sides write without reading first: keep W x B within the
// socket buffers (a few hundred KiB), or the Unix socket's blocking writes
// wait on each other.
// Prints, per round and transport, the round trip's p50 / p99 / max and
// the CPU (user + system, both processes, every thread) per round trip;
// then the medians over the rounds. One-way latency is about half a round
// trip. JSON lines on stdout, the table on stderr.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "bench/args.h"

namespace {

using Clock = std::chrono::steady_clock;

void usage() {
  std::fprintf(stderr,
               "usage: asyncops-bench-transport [--n N] [--rate R] [--window W] [--bytes B] [--rounds K] [--dir DIR]\n");
}

pid_t g_server = 0;  // the forked server of the round running, if any

[[noreturn]] void die(const char* what) {
  std::perror(what);
  if (g_server > 0) ::kill(g_server, SIGKILL);
  std::_Exit(1);
}

double cpu_us(int who) {
  rusage ru{};
  getrusage(who, &ru);
  auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

// Blocking write of exactly n bytes; false on error.
bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t r = ::write(fd, p, n);
    if (r <= 0) {
      if (r < 0 && errno == EINTR) continue;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Buffered reads of length-prefixed frames: one read(2) takes whatever has
// arrived, however many frames that is.
class FrameReader {
 public:
  explicit FrameReader(int fd) : m_fd(fd) {}
  // The next whole frame's body into *body; false on EOF or error.
  bool next(std::string* body) {
    for (;;) {
      if (ready()) {
        uint32_t len = 0;
        std::memcpy(&len, m_buf.data() + m_pos, 4);
        body->assign(m_buf.data() + m_pos + 4, len);
        m_pos += 4 + len;
        return true;
      }
      if (m_pos > 0) {
        m_buf.erase(0, m_pos);
        m_pos = 0;
      }
      char chunk[65536];
      ssize_t r = ::read(m_fd, chunk, sizeof chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      m_buf.append(chunk, static_cast<size_t>(r));
    }
  }
  // Whether a whole frame is already buffered (no read needed for it).
  bool ready() const {
    if (m_buf.size() - m_pos < 4) return false;
    uint32_t len = 0;
    std::memcpy(&len, m_buf.data() + m_pos, 4);
    return m_buf.size() - m_pos - 4 >= len;
  }

 private:
  int m_fd;
  std::string m_buf;
  size_t m_pos = 0;
};

void append_frame(std::string* out, const std::string& body) {
  uint32_t len = static_cast<uint32_t>(body.size());
  out->append(reinterpret_cast<const char*>(&len), 4);
  out->append(body);
}

struct Options {
  int n = 20000;
  double rate = 0;
  int window = 1;
  size_t bytes = 400;
  int rounds = 3;
  std::string dir = "/tmp";
};

// The client side: n round trips of msg through send/recv, paced at rate,
// window of them in flight (the echoes come back in order). Each is timed
// from its send, not from its due time as latency_probe.py times: the
// question is what the transport costs, and a sleeping client's own
// lateness (100-200 us here) is not the transport's. At one in flight and
// 200/s no send waits for an earlier echo. One round trip before the count
// connects and warms up both sides.
template <class Send, class Recv>
std::vector<double> ping(const Options& o, Send send, Recv recv) {
  std::vector<double> rtt;
  rtt.reserve(static_cast<size_t>(o.n));
  std::string msg(o.bytes, 'x'), reply;
  send(msg);
  recv(&reply);
  std::vector<Clock::time_point> sent(static_cast<size_t>(o.n));
  auto start = Clock::now();
  int next = 0;
  auto send_next = [&] {
    if (o.rate > 0) {
      auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(next / o.rate));
      std::this_thread::sleep_until(due);
    }
    sent[static_cast<size_t>(next++)] = Clock::now();
    send(msg);
  };
  while (next < std::min(o.window, o.n)) send_next();
  for (int i = 0; i < o.n; ++i) {
    recv(&reply);
    rtt.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent[static_cast<size_t>(i)]).count());
    if (reply.size() != msg.size()) {
      std::fprintf(stderr, "transport: a reply of %zu bytes, not %zu\n", reply.size(), msg.size());
      std::_Exit(1);
    }
    if (next < o.n) send_next();
  }
  return rtt;
}

// --- zmq
void zmq_server(const std::string& ep, int ready_fd) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  s.bind(ep);
  char c = 1;
  (void)!::write(ready_fd, &c, 1);
  for (;;) {
    zmq::message_t id, body;
    if (!s.recv(id) || !s.recv(body)) break;
    if (body.size() == 0) break;  // the end
    s.send(id, zmq::send_flags::sndmore);
    s.send(body, zmq::send_flags::none);
  }
}

std::vector<double> zmq_client(const Options& o, const std::string& ep) {
  zmq::context_t ctx(1);
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  // Time for the end message to reach the server, which waits for it.
  s.set(zmq::sockopt::linger, 2000);
  s.connect(ep);
  auto rtt = ping(
      o, [&](const std::string& m) { s.send(zmq::buffer(m), zmq::send_flags::none); },
      [&](std::string* r) {
        zmq::message_t msg;
        (void)s.recv(msg);
        r->assign(static_cast<const char*>(msg.data()), msg.size());
      });
  s.send(zmq::message_t(), zmq::send_flags::none);
  return rtt;
}

// --- uds
void uds_server(const std::string& path, int ready_fd) {
  int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  ::unlink(path.c_str());
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0) die("uds bind");
  char c = 1;
  (void)!::write(ready_fd, &c, 1);
  int fd = ::accept(l, nullptr, nullptr);
  if (fd < 0) die("uds accept");
  // As a real server would: every frame that one read brought is echoed,
  // and the echoes go out in one write.
  FrameReader in(fd);
  std::string body, out;
  for (bool more = true; more;) {
    if (!in.next(&body) || body.empty()) break;
    append_frame(&out, body);
    while (in.ready()) {
      if (!in.next(&body) || body.empty()) {
        more = false;
        break;
      }
      append_frame(&out, body);
    }
    if (!write_all(fd, out.data(), out.size())) break;
    out.clear();
  }
  ::close(fd);
  ::close(l);
  ::unlink(path.c_str());
}

std::vector<double> uds_client(const Options& o, const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("uds connect");
  std::string frame;
  FrameReader in(fd);
  auto rtt = ping(
      o,
      [&](const std::string& m) {
        frame.clear();
        append_frame(&frame, m);
        if (!write_all(fd, frame.data(), frame.size())) die("uds write");
      },
      [&](std::string* r) {
        if (!in.next(r)) die("uds read");
      });
  frame.clear();
  append_frame(&frame, std::string());
  (void)write_all(fd, frame.data(), frame.size());
  ::close(fd);
  return rtt;
}

struct Figures {
  double p50 = 0, p99 = 0, max = 0, cpu_per_rtt = 0;
};

// Nearest rank on sorted values, as the load generator computes it.
double pct(const std::vector<double>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::min(std::max<size_t>(rank, 1), sorted.size()) - 1];
}

// One transport, one round: the server forked, the client here.
Figures run_one(const Options& o, const std::string& kind, int round) {
  std::string where = o.dir + "/aobt-" + std::to_string(::getpid()) + "-" + kind + std::to_string(round);
  int ready[2];
  if (::pipe(ready) != 0) die("pipe");
  double children_before = cpu_us(RUSAGE_CHILDREN);
  pid_t pid = ::fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    g_server = 0;
    ::close(ready[0]);
    if (kind == "zmq") zmq_server("ipc://" + where, ready[1]); else uds_server(where, ready[1]);
    std::_Exit(0);
  }
  g_server = pid;
  ::close(ready[1]);
  char c;
  if (::read(ready[0], &c, 1) != 1) {
    std::fprintf(stderr, "transport: the %s server did not start\n", kind.c_str());
    ::kill(pid, SIGKILL);
    std::_Exit(1);
  }
  ::close(ready[0]);
  double self_before = cpu_us(RUSAGE_SELF);
  std::vector<double> rtt = kind == "zmq" ? zmq_client(o, "ipc://" + where) : uds_client(o, where);
  double self_after = cpu_us(RUSAGE_SELF);
  int status = 0;
  ::waitpid(pid, &status, 0);
  g_server = 0;
  ::unlink(where.c_str());
  double children = cpu_us(RUSAGE_CHILDREN) - children_before;
  Figures f;
  std::sort(rtt.begin(), rtt.end());
  f.p50 = pct(rtt, 0.50);
  f.p99 = pct(rtt, 0.99);
  f.max = rtt.back();
  f.cpu_per_rtt = (self_after - self_before + children) / static_cast<double>(o.n);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  FlagReader flags(argc, argv, usage);
  for (std::string a; flags.next(&a);) {
    if (a == "--n") o.n = flags.positive();
    else if (a == "--rate") o.rate = std::atof(flags.value().c_str());
    else if (a == "--window") o.window = flags.positive();
    else if (a == "--bytes") o.bytes = static_cast<size_t>(flags.positive());
    else if (a == "--rounds") o.rounds = flags.positive();
    else if (a == "--dir") o.dir = flags.value();
    else flags.fail();
  }
  std::vector<Figures> zmq_f, uds_f;
  std::fprintf(stderr, "round trips of %zu bytes, n=%d, window=%d, rate=%s\n", o.bytes, o.n, o.window,
               o.rate > 0 ? std::to_string(o.rate).c_str() : "back to back");
  std::fprintf(stderr, "%-6s %-4s %10s %10s %10s %14s\n", "round", "via", "p50 us", "p99 us", "max us", "CPU us / rtt");
  for (int r = 0; r < o.rounds; ++r) {
    const char* order[2] = {"zmq", "uds"};
    if (r % 2 == 1) std::swap(order[0], order[1]);
    for (const char* kind : order) {
      Figures f = run_one(o, kind, r);
      (std::string(kind) == "zmq" ? zmq_f : uds_f).push_back(f);
      std::printf("{\"round\":%d,\"via\":\"%s\",\"n\":%d,\"window\":%d,\"rate\":%g,\"bytes\":%zu,\"p50_us\":%.1f,"
                  "\"p99_us\":%.1f,\"max_us\":%.1f,\"cpu_us_per_rtt\":%.2f}\n",
                  r + 1, kind, o.n, o.window, o.rate, o.bytes, f.p50, f.p99, f.max, f.cpu_per_rtt);
      std::fflush(stdout);
      std::fprintf(stderr, "%-6d %-4s %10.1f %10.1f %10.1f %14.2f\n", r + 1, kind, f.p50, f.p99, f.max, f.cpu_per_rtt);
    }
  }
  auto median = [](const std::vector<Figures>& v, double Figures::*m) {
    std::vector<double> x;
    for (const auto& f : v) x.push_back(f.*m);
    std::sort(x.begin(), x.end());
    return x[x.size() / 2];
  };
  for (const auto* v : {&zmq_f, &uds_f}) {
    std::fprintf(stderr, "%-6s %-4s %10.1f %10.1f %10.1f %14.2f\n", "median", v == &zmq_f ? "zmq" : "uds",
                 median(*v, &Figures::p50), median(*v, &Figures::p99), median(*v, &Figures::max),
                 median(*v, &Figures::cpu_per_rtt));
  }
  return 0;
}
