// asyncops-bench-sse: keeps N Server-Sent Events streams open (one per
// operation, GET /operations/{id}/events) and M WebSocket streams (GET /ws,
// RFC 6455, one {"subscribe": "<op id>"} each; issue 11) while commands are
// submitted, then checks that every watcher received every change of its
// operation and compares the accept latency of POST /users with and without
// the streams.
//
// It starts asyncopsd and asyncops-worker itself (fork/exec) on a data dir,
// talks to the daemon over raw POSIX sockets on 127.0.0.1 only, and bounds
// every wait with a deadline. See bench/sse/README.md.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include "shared/clock.h"
#include "shared/exec_args.h"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- utilities

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  if (rank < 1) rank = 1;
  return v[std::min(rank, v.size()) - 1];
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool is_terminal_state(const std::string& s) {
  return s == "completed" || s == "rejected" || s == "failed" || s == "canceled";
}

std::string fmt(double v, int prec = 2) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

// ---------------------------------------------------------------- processes

pid_t spawn(const std::vector<std::string>& args, const std::string& log_path, long nofile = 0) {
  asyncops::ExecArgs argv(args);  // before fork: the child may not allocate (shared/exec_args.h)
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (nofile > 0) {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = static_cast<rlim_t>(nofile);
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  int out = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, 0);
  ::execv(argv.first(), argv.data());
  ::_exit(127);
}

// SIGTERM, then SIGKILL after the deadline. Returns the wait status or -1.
int stop_process(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return -1;
  ::kill(pid, SIGTERM);
  auto deadline = Clock::now() + grace;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return -1;
}

// True while the process runs; when it has exited, *how says how.
bool alive(pid_t pid, std::string* how) {
  int status = 0;
  if (pid <= 0) return false;
  if (::waitpid(pid, &status, WNOHANG) == 0) return true;
  if (WIFSIGNALED(status)) {
    *how = std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  } else if (WIFEXITED(status)) {
    *how = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  return false;
}

struct ProcSample {
  double t_s = 0;
  std::string phase;
  long rss_kb = 0, hwm_kb = 0, threads = 0, fds = 0;
};

bool read_proc(pid_t pid, ProcSample* s) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return false;
  for (std::string line; std::getline(in, line);) {
    auto num = [&](const char* key, long* out) {
      size_t n = std::strlen(key);
      if (line.compare(0, n, key) == 0) *out = std::atol(line.c_str() + n);
    };
    num("VmRSS:", &s->rss_kb);
    num("VmHWM:", &s->hwm_kb);
    num("Threads:", &s->threads);
  }
  s->fds = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++s->fds;
    }
    ::closedir(d);
  }
  return true;
}

// TcpExt counters of the whole host (/proc/net/netstat): ListenOverflows
// counts connections dropped because a listen socket's accept queue was full.
std::map<std::string, long> tcp_ext() {
  std::ifstream in("/proc/net/netstat");
  std::map<std::string, long> out;
  std::string names, values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0) continue;
    std::istringstream n(names), v(values);
    std::string k, x;
    n >> k;
    v >> x;
    while (n >> k && v >> x) out[k] = std::atol(x.c_str());
  }
  return out;
}

long listen_overflows() { return tcp_ext()["ListenOverflows"]; }

// ---------------------------------------------------------------- blocking HTTP

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

int connect_local(int port, bool nonblocking) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!nonblocking) {
    timeval tv{15, 0};  // every blocking read or write is bounded
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Parses "HTTP/1.1 200 OK\r\nName: v\r\n..." (without the final blank line).
bool parse_head(const std::string& head, Response* r) {
  std::istringstream in(head);
  std::string line;
  if (!std::getline(in, line) || line.compare(0, 5, "HTTP/") != 0) return false;
  auto sp = line.find(' ');
  if (sp == std::string::npos) return false;
  r->status = std::atoi(line.c_str() + sp + 1);
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string v = line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(' '));
    r->headers[lower(line.substr(0, colon))] = v;
  }
  return true;
}

// One keep-alive HTTP/1.1 connection with blocking sockets (15 s timeouts).
class Conn {
 public:
  explicit Conn(int port) : m_port(port) {}
  ~Conn() { close(); }
  bool connected() const { return m_fd >= 0; }
  bool connect(std::string* err) {
    if (m_fd >= 0) return true;
    if ((m_fd = connect_local(m_port, false)) < 0) {
      *err = std::string("connect: ") + std::strerror(errno);
      return false;
    }
    return true;
  }
  void close() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
    m_buf.clear();
  }
  // Sends a request and reads a full response (Content-Length or chunked).
  bool roundtrip(const std::string& req, Response* r, std::string* err) {
    if (!connect(err)) return false;
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = ::send(m_fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        *err = std::string("send: ") + (n == 0 ? "closed" : std::strerror(errno));
        close();
        return false;
      }
      off += static_cast<size_t>(n);
    }
    *r = Response{};
    size_t head_end;
    while ((head_end = m_buf.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(err)) return false;
    }
    if (!parse_head(m_buf.substr(0, head_end), r)) {
      *err = "bad response head";
      close();
      return false;
    }
    m_buf.erase(0, head_end + 4);
    auto te = r->headers.find("transfer-encoding");
    if (te != r->headers.end() && lower(te->second).find("chunked") != std::string::npos) {
      for (;;) {
        size_t eol;
        while ((eol = m_buf.find("\r\n")) == std::string::npos) {
          if (!fill(err)) return false;
        }
        size_t size = std::strtoul(m_buf.c_str(), nullptr, 16);
        m_buf.erase(0, eol + 2);
        if (size == 0) {
          while ((eol = m_buf.find("\r\n")) != 0) {  // trailers, then the blank line
            if (eol == std::string::npos) {
              if (!fill(err)) return false;
            } else {
              m_buf.erase(0, eol + 2);
            }
          }
          m_buf.erase(0, 2);
          break;
        }
        while (m_buf.size() < size + 2) {
          if (!fill(err)) return false;
        }
        r->body.append(m_buf, 0, size);
        m_buf.erase(0, size + 2);
      }
    } else {
      size_t len = 0;
      if (auto cl = r->headers.find("content-length"); cl != r->headers.end()) {
        len = std::strtoul(cl->second.c_str(), nullptr, 10);
      }
      while (m_buf.size() < len) {
        if (!fill(err)) return false;
      }
      r->body = m_buf.substr(0, len);
      m_buf.erase(0, len);
    }
    if (lower(r->headers["connection"]) == "close") close();
    return true;
  }

 private:
  bool fill(std::string* err) {
    char tmp[16384];
    ssize_t n = ::recv(m_fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      *err = std::string("recv: ") + (n == 0 ? "closed by server" : std::strerror(errno));
      close();
      return false;
    }
    m_buf.append(tmp, static_cast<size_t>(n));
    return true;
  }
  int m_port;
  int m_fd = -1;
  std::string m_buf;
};

std::string get_request(const std::string& path, int port) {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\n\r\n";
}

// ---------------------------------------------------------------- submit phases

struct PhaseResult {
  std::string name;
  int requested = 0, accepted = 0, errors = 0;
  std::string first_error;
  std::vector<double> lat_ms;
  std::vector<double> connect_ms;  // connection setup (connect + one GET /healthz), not in lat_ms
  std::vector<std::string> ids;  // when asked for, in submission order
  double wall_s = 0;
  long listen_overflows = 0;  // host-wide ListenOverflows increase during the phase
};

// Sends `count` POST /users from `conns` keep-alive connections (one thread
// each) and times each one from the first byte sent to the full response.
// Each connection is first opened and warmed up with GET /healthz (timed
// separately as connect_ms), so accept latency never includes connection
// setup; the timed requests start once every connection is ready.
PhaseResult submit_phase(const std::string& name, int port, int count, int conns,
                         const std::string& tag, bool want_ids) {
  PhaseResult res;
  res.name = name;
  res.requested = count;
  if (want_ids) res.ids.assign(static_cast<size_t>(count), "");
  std::atomic<int> next{0};
  std::mutex mu;
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  long lo0 = listen_overflows();
  Clock::time_point t0;
  std::atomic<bool> go{false};
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      Conn conn(port);
      std::vector<double> lat, conn_ms;
      int ok = 0, errors = 0;
      std::string first_err;
      auto warm = [&] {
        Response r;
        std::string err;
        auto s = Clock::now();
        bool done = conn.roundtrip(get_request("/healthz", port), &r, &err);
        conn_ms.push_back(ms_since(s));
        if ((!done || r.status != 200) && first_err.empty()) first_err = "warm-up: " + (done ? "HTTP " + std::to_string(r.status) : err);
      };
      warm();
      ++ready;
      while (!go) std::this_thread::sleep_for(std::chrono::microseconds(200));
      for (;;) {
        if (!conn.connected()) warm();  // reconnect (server closed), not timed as accept latency
        int i = next.fetch_add(1);
        if (i >= count) break;
        std::string body = "{\"email\":\"" + tag + "-" + std::to_string(i) +
                           "@example.com\",\"name\":\"Bench " + std::to_string(i) + "\"}";
        std::string req = "POST /users HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                          "\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
        Response r;
        std::string err;
        auto s = Clock::now();
        bool done = conn.roundtrip(req, &r, &err);
        double ms = ms_since(s);
        if (!done || r.status != 202) {
          ++errors;
          if (first_err.empty()) first_err = done ? "HTTP " + std::to_string(r.status) + ": " + r.body.substr(0, 200) : err;
          continue;
        }
        ++ok;
        lat.push_back(ms);
        if (want_ids) {
          json j = json::parse(r.body, nullptr, false);
          if (j.is_object()) res.ids[static_cast<size_t>(i)] = j.value("id", "");
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      res.accepted += ok;
      res.errors += errors;
      if (res.first_error.empty()) res.first_error = first_err;
      res.lat_ms.insert(res.lat_ms.end(), lat.begin(), lat.end());
      res.connect_ms.insert(res.connect_ms.end(), conn_ms.begin(), conn_ms.end());
      (void)c;
    });
  }
  while (ready < conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  t0 = Clock::now();
  go = true;
  for (auto& t : threads) t.join();
  res.wall_s = ms_since(t0) / 1000.0;
  res.listen_overflows = listen_overflows() - lo0;
  return res;
}

json phase_json(const PhaseResult& p) {
  return {{"name", p.name},
          {"requested", p.requested},
          {"accepted_202", p.accepted},
          {"errors", p.errors},
          {"first_error", p.first_error},
          {"wall_s", p.wall_s},
          {"rate_per_s", p.wall_s > 0 ? p.accepted / p.wall_s : 0},
          {"p50_ms", percentile(p.lat_ms, 0.50)},
          {"p90_ms", percentile(p.lat_ms, 0.90)},
          {"p99_ms", percentile(p.lat_ms, 0.99)},
          {"max_ms", percentile(p.lat_ms, 1.0)},
          {"connections_opened", p.connect_ms.size()},
          {"connect_ms_max", percentile(p.connect_ms, 1.0)},
          {"host_listen_overflows", p.listen_overflows}};
}

// ---------------------------------------------------------------- SSE watchers

struct Watcher {
  std::string op_id;
  bool ws = false;  // a WebSocket stream (GET /ws) instead of SSE
  int fd = -1;
  enum Phase { idle, connecting, head, body, done, failed } phase = idle;
  std::string out;
  size_t out_off = 0;
  std::string headbuf;
  int status = 0;
  // chunked decoding
  enum CState { size_line, data, data_crlf, trailer } cstate = size_line;
  std::string cline;
  size_t chunk_left = 0;
  // SSE parsing
  std::string line;
  std::string ev_id, ev_data;
  bool ev_has_data = false;
  int retry_ms = -1;
  int heartbeats = 0;
  std::vector<int64_t> ids;
  std::vector<std::string> states;
  bool terminal_seen = false;
  bool clean_end = false;  // terminal event, then the last chunk
  bool event_after_terminal = false;
  int bad_events = 0;
  // WebSocket
  std::string ws_key_accept;  // the Sec-WebSocket-Accept the server must send
  std::string ws_in;          // received bytes not yet parsed into frames
  std::string ws_msg;         // a fragmented message being assembled
  bool ws_end = false;        // {"end": id} received
  int pings = 0;
  std::string error;
  Clock::time_point t_start, t_first;
};

// ---------------------------------------------------------------- WebSocket client (RFC 6455)

std::string base64(const unsigned char* p, size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16;
    if (i + 1 < n) v |= static_cast<uint32_t>(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < n ? k[(v >> 6) & 63] : '=';
    out += i + 2 < n ? k[v & 63] : '=';
  }
  return out;
}

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)).
std::string ws_accept_for(const std::string& key) {
  std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return base64(digest, sizeof digest);
}

// One client frame: FIN set, masked with a fresh key (clients must mask).
std::string ws_frame(uint8_t opcode, const std::string& payload, uint32_t mask_seed) {
  std::string f;
  f += static_cast<char>(0x80 | opcode);
  size_t n = payload.size();
  if (n < 126) {
    f += static_cast<char>(0x80 | n);
  } else if (n < 65536) {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>(n >> 8);
    f += static_cast<char>(n & 0xff);
  } else {
    f += static_cast<char>(0x80 | 127);
    for (int k = 7; k >= 0; --k) f += static_cast<char>((static_cast<uint64_t>(n) >> (8 * k)) & 0xff);
  }
  unsigned char mask[4] = {static_cast<unsigned char>(mask_seed), static_cast<unsigned char>(mask_seed >> 8),
                           static_cast<unsigned char>(mask_seed >> 16), static_cast<unsigned char>(mask_seed >> 24)};
  f.append(reinterpret_cast<char*>(mask), 4);
  for (size_t i = 0; i < n; ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
  return f;
}

constexpr size_t k_max_ws_message = 1 << 20;  // a change document is a few KiB at most

class WatcherSet {
 public:
  // The first sse_count ids are watched over SSE, the rest over WebSocket.
  WatcherSet(int port, std::vector<std::string> op_ids, size_t sse_count, int connect_window)
      : m_port(port), m_window(connect_window), m_w(op_ids.size()) {
    for (size_t i = 0; i < op_ids.size(); ++i) {
      m_w[i].op_id = std::move(op_ids[i]);
      m_w[i].ws = i >= sse_count;
    }
  }

  void start() { m_thread = std::thread([this] { loop(); }); }
  void stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
  }
  int first_events() const { return m_first; }
  int finished() const { return m_finished; }
  int open_streams() const { return m_open; }
  std::vector<Watcher>& watchers() { return m_w; }
  std::vector<double>& lag_ms() { return m_lag; }
  double connect_all_ms() const { return m_connect_all_ms; }

 private:
  void start_connect(size_t i) {
    Watcher& w = m_w[i];
    w.t_start = Clock::now();
    w.fd = connect_local(m_port, true);
    if (w.fd < 0) {
      fail(i, std::string("socket/connect: ") + std::strerror(errno));
      return;
    }
    if (w.ws) {
      unsigned char raw[16];
      for (auto& b : raw) b = static_cast<unsigned char>(m_rng() & 0xff);
      std::string key = base64(raw, sizeof raw);
      w.ws_key_accept = ws_accept_for(key);
      w.out = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(m_port) +
              "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
              "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    } else {
      w.out = "GET /operations/" + w.op_id + "/events HTTP/1.1\r\nHost: 127.0.0.1:" +
              std::to_string(m_port) + "\r\nAccept: text/event-stream\r\n\r\n";
    }
    w.phase = Watcher::connecting;
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(m_ep, EPOLL_CTL_ADD, w.fd, &ev);
    ++m_pending;
    ++m_open;
  }

  void close_fd(Watcher& w) {
    if (w.fd >= 0) {
      ::epoll_ctl(m_ep, EPOLL_CTL_DEL, w.fd, nullptr);
      ::close(w.fd);
      w.fd = -1;
      --m_open;
    }
  }

  void fail(size_t i, const std::string& why) {
    Watcher& w = m_w[i];
    if (w.phase == Watcher::done || w.phase == Watcher::failed) return;
    if (w.ids.empty()) {
      --m_pending;
      ++m_failed_no_first;
    }
    w.error = why;
    w.phase = Watcher::failed;
    close_fd(w);
    ++m_finished;
  }

  void finish(size_t i) {
    Watcher& w = m_w[i];
    w.clean_end = w.terminal_seen && (!w.ws || w.ws_end);
    if (!w.terminal_seen) w.error = "stream ended without a terminal state";
    if (w.ids.empty()) --m_pending;
    w.phase = Watcher::done;
    close_fd(w);
    ++m_finished;
  }

  void dispatch_event(size_t i) {
    Watcher& w = m_w[i];
    if (!w.ev_has_data) {
      w.ev_id.clear();
      return;
    }
    char* end = nullptr;
    long long id = w.ev_id.empty() ? -1 : std::strtoll(w.ev_id.c_str(), &end, 10);
    record_event(i, id, json::parse(w.ev_data, nullptr, false));
    w.ev_id.clear();
    w.ev_data.clear();
    w.ev_has_data = false;
  }

  // One change for watcher i: SSE's id and data, or WebSocket's seq and
  // operation.
  void record_event(size_t i, long long id, const json& j) {
    Watcher& w = m_w[i];
    std::string state = j.is_object() && j.contains("state") && j["state"].is_string() ? j["state"].get<std::string>() : "";
    if (id < 0 || state.empty() || !j.is_object() || j.value("id", "") != w.op_id) ++w.bad_events;
    if (w.terminal_seen) w.event_after_terminal = true;
    bool first = w.ids.empty();
    w.ids.push_back(id);
    w.states.push_back(state);
    if (is_terminal_state(state)) w.terminal_seen = true;
    if (first) {
      w.t_first = Clock::now();
      --m_pending;
      ++m_first;
    } else if (j.is_object()) {
      if (auto at = asyncops::parse_rfc3339(j.value("updated_at", ""))) {
        m_lag.push_back(static_cast<double>(asyncops::now_ms() - at.value()));
      }
    }
  }

  // Queues bytes for watcher i and sends what the socket takes now; the
  // rest goes out when it is writable.
  void send_bytes(size_t i, const std::string& bytes) {
    Watcher& w = m_w[i];
    w.out.erase(0, w.out_off);
    w.out_off = 0;
    w.out += bytes;
    flush(i);
  }
  // Sends w.out from w.out_off; false if the watcher failed.
  bool flush(size_t i) {
    Watcher& w = m_w[i];
    while (w.out_off < w.out.size()) {
      ssize_t n = ::send(w.fd, w.out.data() + w.out_off, w.out.size() - w.out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
          ev.data.u64 = i;
          ::epoll_ctl(m_ep, EPOLL_CTL_MOD, w.fd, &ev);
          return true;
        }
        fail(i, std::string("send: ") + std::strerror(errno));
        return false;
      }
      w.out_off += static_cast<size_t>(n);
    }
    return true;
  }

  // One complete text message from the server.
  void ws_message(size_t i, const std::string& text) {
    Watcher& w = m_w[i];
    json j = json::parse(text, nullptr, false);
    if (!j.is_object()) {
      ++w.bad_events;
      return;
    }
    if (j.contains("seq") && j.contains("operation")) {
      long long seq = j["seq"].is_number_integer() ? j["seq"].get<long long>() : -1;
      record_event(i, seq, j["operation"]);
    } else if (j.contains("end")) {
      if (!j["end"].is_string() || j["end"].get<std::string>() != w.op_id) ++w.bad_events;
      w.ws_end = true;
      // Done with this stream: a normal close (1000), then our side closes.
      send_bytes(i, ws_frame(0x8, std::string("\x03\xe8", 2), m_rng()));
      finish(i);
    } else if (j.contains("error")) {
      fail(i, "server error message: " + j["error"].dump().substr(0, 200));
    } else if (j.contains("subscribed") || j.contains("unsubscribed")) {
      // The server's acknowledgement of our own request (docs/websocket.md).
      const auto& arg = j.contains("subscribed") ? j["subscribed"] : j["unsubscribed"];
      if (!(arg.is_string() && arg.get<std::string>() == w.op_id)) ++w.bad_events;
    } else {
      ++w.bad_events;
    }
  }

  // Parses frames out of w.ws_in. Returns false when the watcher is done.
  bool ws_bytes(size_t i, const char* p, size_t n) {
    Watcher& w = m_w[i];
    w.ws_in.append(p, n);
    for (;;) {
      const auto* b = reinterpret_cast<const unsigned char*>(w.ws_in.data());
      size_t have = w.ws_in.size();
      if (have < 2) return true;
      bool fin = b[0] & 0x80;
      uint8_t op = b[0] & 0x0f;
      if (b[1] & 0x80) {
        fail(i, "websocket: the server masked a frame");
        return false;
      }
      uint64_t len = b[1] & 0x7f;
      size_t hdr = 2;
      if (len == 126) {
        if (have < 4) return true;
        len = (uint64_t{b[2]} << 8) | b[3];
        hdr = 4;
      } else if (len == 127) {
        if (have < 10) return true;
        len = 0;
        for (int k = 0; k < 8; ++k) len = (len << 8) | b[2 + k];
        hdr = 10;
      }
      if (len > k_max_ws_message) {
        fail(i, "websocket: frame of " + std::to_string(len) + " bytes");
        return false;
      }
      if (have < hdr + len) return true;
      std::string payload = w.ws_in.substr(hdr, static_cast<size_t>(len));
      w.ws_in.erase(0, hdr + static_cast<size_t>(len));
      switch (op) {
        case 0x0:  // continuation
        case 0x1:  // text
          if (w.ws_msg.size() + payload.size() > k_max_ws_message) {
            fail(i, "websocket: message too long");
            return false;
          }
          w.ws_msg += payload;
          if (fin) {
            std::string msg;
            msg.swap(w.ws_msg);
            ws_message(i, msg);
            if (w.phase == Watcher::done || w.phase == Watcher::failed) return false;
          }
          break;
        case 0x2:
          ++w.bad_events;  // the protocol is JSON text frames only
          break;
        case 0x8: {
          int code = payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                               static_cast<unsigned char>(payload[1])
                                         : 1005;
          fail(i, "websocket closed by the server before the end message, code " + std::to_string(code) +
                      (payload.size() > 2 ? " (" + payload.substr(2, 100) + ")" : ""));
          return false;
        }
        case 0x9:  // ping: answer with a pong carrying its payload
          ++w.pings;
          send_bytes(i, ws_frame(0xA, payload, m_rng()));
          if (w.phase == Watcher::failed) return false;
          break;
        case 0xA:
          break;
        default:
          fail(i, "websocket: unknown opcode " + std::to_string(op));
          return false;
      }
    }
  }

  void sse_line(size_t i, std::string& line) {
    Watcher& w = m_w[i];
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) {
      dispatch_event(i);
      return;
    }
    if (line[0] == ':') {
      ++w.heartbeats;
      return;
    }
    auto colon = line.find(':');
    std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (field == "id") {
      w.ev_id = value;
    } else if (field == "data") {
      if (w.ev_has_data) w.ev_data += '\n';
      w.ev_data += value;
      w.ev_has_data = true;
    } else if (field == "retry") {
      w.retry_ms = std::atoi(value.c_str());
    }
  }

  void sse_bytes(size_t i, const char* p, size_t n) {
    Watcher& w = m_w[i];
    for (size_t k = 0; k < n; ++k) {
      if (p[k] == '\n') {
        sse_line(i, w.line);
        w.line.clear();
      } else {
        w.line.push_back(p[k]);
      }
    }
  }

  // Feeds body bytes through the chunked decoder. Returns false when the
  // stream has ended (last chunk and trailers read) or failed.
  bool body_bytes(size_t i, const char* p, size_t n) {
    Watcher& w = m_w[i];
    while (n > 0) {
      switch (w.cstate) {
        case Watcher::size_line:
        case Watcher::trailer:
        case Watcher::data_crlf: {
          char c = *p++;
          --n;
          if (c != '\n') {
            if (w.cline.size() > 1024) {
              fail(i, "chunk framing: line too long");
              return false;
            }
            w.cline.push_back(c);
            break;
          }
          if (!w.cline.empty() && w.cline.back() == '\r') w.cline.pop_back();
          std::string l;
          l.swap(w.cline);
          if (w.cstate == Watcher::data_crlf) {
            if (!l.empty()) {
              fail(i, "chunk framing: data not followed by CRLF");
              return false;
            }
            w.cstate = Watcher::size_line;
          } else if (w.cstate == Watcher::size_line) {
            char* end = nullptr;
            unsigned long size = std::strtoul(l.c_str(), &end, 16);
            if (end == l.c_str()) {
              fail(i, "chunk framing: bad size line '" + l.substr(0, 40) + "'");
              return false;
            }
            if (size == 0) {
              w.cstate = Watcher::trailer;
            } else {
              w.chunk_left = size;
              w.cstate = Watcher::data;
            }
          } else if (l.empty()) {  // end of trailers: the response is complete
            finish(i);
            return false;
          }
          break;
        }
        case Watcher::data: {
          size_t k = std::min(n, w.chunk_left);
          sse_bytes(i, p, k);
          p += k;
          n -= k;
          w.chunk_left -= k;
          if (w.chunk_left == 0) w.cstate = Watcher::data_crlf;
          break;
        }
      }
    }
    return true;
  }

  void on_readable(size_t i) {
    Watcher& w = m_w[i];
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(w.fd, buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        fail(i, std::string("recv: ") + std::strerror(errno));
        return;
      }
      if (n == 0) {
        fail(i, w.terminal_seen ? (w.ws ? "connection closed after the terminal event, before the end message"
                                        : "connection closed after the terminal event, before the last chunk")
                                : "connection closed before the end of the stream");
        return;
      }
      const char* p = buf;
      size_t len = static_cast<size_t>(n);
      if (w.phase == Watcher::head) {
        w.headbuf.append(p, len);
        size_t end = w.headbuf.find("\r\n\r\n");
        if (end == std::string::npos) {
          if (w.headbuf.size() > 65536) fail(i, "response head too long");
          continue;
        }
        Response r;
        if (!parse_head(w.headbuf.substr(0, end), &r)) {
          fail(i, "bad response head");
          return;
        }
        w.status = r.status;
        if (w.ws && (r.status != 101 || lower(r.headers["upgrade"]) != "websocket" ||
                     r.headers["sec-websocket-accept"] != w.ws_key_accept)) {
          fail(i, "websocket handshake refused: HTTP " + std::to_string(r.status) + " upgrade '" +
                      r.headers["upgrade"] + "' accept '" + r.headers["sec-websocket-accept"] + "'");
          return;
        }
        if (!w.ws && (r.status != 200 || lower(r.headers["transfer-encoding"]).find("chunked") == std::string::npos ||
                      lower(r.headers["content-type"]).find("text/event-stream") == std::string::npos)) {
          fail(i, "unexpected response: HTTP " + std::to_string(r.status) + " content-type '" +
                      r.headers["content-type"] + "' transfer-encoding '" + r.headers["transfer-encoding"] + "'");
          return;
        }
        // The bytes read past the head are the first of the body (SSE) or
        // of the first frames (WebSocket).
        std::string rest = w.headbuf.substr(end + 4);
        w.headbuf.clear();
        w.phase = Watcher::body;
        if (w.ws) {
          send_bytes(i, ws_frame(0x1, json{{"subscribe", w.op_id}}.dump(), m_rng()));
          if (w.phase == Watcher::failed) return;
        }
        if (!rest.empty() && !(w.ws ? ws_bytes(i, rest.data(), rest.size()) : body_bytes(i, rest.data(), rest.size()))) {
          return;
        }
        continue;
      }
      if (w.phase == Watcher::body && !(w.ws ? ws_bytes(i, p, len) : body_bytes(i, p, len))) return;
    }
  }

  void on_writable(size_t i) {
    Watcher& w = m_w[i];
    if (w.phase == Watcher::connecting) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(w.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        fail(i, std::string("connect: ") + std::strerror(err));
        return;
      }
    }
    while (w.out_off < w.out.size()) {
      ssize_t n = ::send(w.fd, w.out.data() + w.out_off, w.out.size() - w.out_off, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        fail(i, std::string("send: ") + std::strerror(errno));
        return;
      }
      w.out_off += static_cast<size_t>(n);
    }
    if (w.phase == Watcher::connecting) w.phase = Watcher::head;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    ::epoll_ctl(m_ep, EPOLL_CTL_MOD, w.fd, &ev);
  }

  void loop() {
    m_ep = ::epoll_create1(EPOLL_CLOEXEC);
    size_t next = 0;
    auto t0 = Clock::now();
    std::vector<epoll_event> evs(1024);
    while (!m_stop) {
      // At most m_window streams are connecting or waiting for their first
      // event at a time, so the daemon's accept queue is not flooded.
      while (next < m_w.size() && m_pending < m_window) start_connect(next++);
      if (next == m_w.size() && m_first + m_failed_no_first >= static_cast<int>(m_w.size()) &&
          m_connect_all_ms == 0) {
        m_connect_all_ms = ms_since(t0);
      }
      if (m_finished >= static_cast<int>(m_w.size())) break;
      int n = ::epoll_wait(m_ep, evs.data(), static_cast<int>(evs.size()), 100);
      for (int k = 0; k < n; ++k) {
        size_t i = evs[k].data.u64;
        Watcher& w = m_w[i];
        if (w.fd < 0) continue;
        if (evs[k].events & EPOLLOUT) on_writable(i);
        if (w.fd >= 0 && (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
          if (w.phase == Watcher::connecting && (evs[k].events & (EPOLLHUP | EPOLLERR))) {
            on_writable(i);  // reports the connect error
          } else if (w.phase != Watcher::connecting) {
            on_readable(i);
          }
        }
      }
    }
    for (auto& w : m_w) close_fd(w);
    ::close(m_ep);
  }

  int m_port;
  int m_window;
  std::vector<Watcher> m_w;
  std::vector<double> m_lag;
  int m_ep = -1;
  int m_failed_no_first = 0;
  int m_pending = 0;  // connecting or not yet at their first event (loop thread only)
  std::atomic<int> m_first{0}, m_finished{0}, m_open{0};
  std::atomic<bool> m_stop{false};
  std::atomic<double> m_connect_all_ms{0};
  std::mt19937 m_rng{std::random_device{}()};  // WebSocket keys and masks (loop thread only)
  std::thread m_thread;
};

// ---------------------------------------------------------------- main

struct Options {
  int watchers = 1000;
  int ws_watchers = 0;
  int commands = 5000;
  int connections = 16;
  int workers = 2;
  int connect_window = 4;  // below the daemon's accept queue (listen backlog 5)
  int deadline_s = 120;
  long daemon_nofile = 0;  // 0: inherit
  bool quick = false;
  bool no_baseline_workers = false;
  std::string daemon_bin, worker_bin, data_dir, out = "results.json";
  std::vector<std::string> daemon_args;
};

int read_port(const std::string& data_dir, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::ifstream in(data_dir + "/asyncopsd.url");
    std::string url;
    if (in && std::getline(in, url) && url.rfind("http://", 0) == 0) {
      auto colon = url.rfind(':');
      return std::atoi(url.c_str() + colon + 1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

// Waits until no operation is pending or processing.
bool wait_quiet(int port, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  Conn c(port);
  while (Clock::now() < deadline) {
    bool quiet = true;
    for (const char* s : {"pending", "processing"}) {
      Response r;
      std::string err;
      if (!c.roundtrip(get_request(std::string("/operations?state=") + s + "&limit=1", port), &r, &err) ||
          r.status != 200) {
        quiet = false;
        break;
      }
      json j = json::parse(r.body, nullptr, false);
      if (!j.is_object() || !j["items"].is_array() || !j["items"].empty()) quiet = false;
    }
    if (quiet) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

long sse_clients_metric(int port) {
  Conn c(port);
  Response r;
  std::string err;
  if (!c.roundtrip(get_request("/metrics", port), &r, &err)) return -1;
  auto pos = r.body.find("\nasyncops_sse_clients ");
  return pos == std::string::npos ? -1 : std::atol(r.body.c_str() + pos + 22);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"asyncops-bench-sse: N SSE watchers while commands are submitted"};
  Options o;
  app.add_option("--watchers", o.watchers, "SSE streams to hold open (one per watched operation)")
      ->check(CLI::Range(0, 20000));
  app.add_option("--ws-watchers", o.ws_watchers,
                 "WebSocket streams to hold open (GET /ws, one {\"subscribe\": id} per watched operation)")
      ->check(CLI::Range(0, 20000));
  app.add_option("--commands", o.commands, "Commands per latency phase")->check(CLI::Range(1, 1000000));
  app.add_option("--connections", o.connections, "Keep-alive connections submitting commands")
      ->check(CLI::Range(1, 256));
  app.add_option("--workers", o.workers, "asyncops-worker processes")->check(CLI::Range(1, 16));
  app.add_option("--connect-window", o.connect_window,
                 "Most watchers connecting (before their first event) at a time; the daemon's "
                 "listen backlog is 5, so more than ~5 overflows its accept queue")
      ->check(CLI::Range(1, 20000));
  app.add_option("--deadline", o.deadline_s, "Seconds to wait for every stream to end")
      ->check(CLI::Range(5, 3600));
  app.add_flag("--quick", o.quick, "200 watchers, 1000 commands (unless given)");
  app.add_option("--daemon", o.daemon_bin, "Path of asyncopsd (required unless --ws-selftest)");
  app.add_option("--worker", o.worker_bin, "Path of asyncops-worker (required unless --ws-selftest)");
  int ws_selftest_port = 0;
  app.add_option("--ws-selftest", ws_selftest_port,
                 "Only check the WebSocket client: open --ws-watchers (default 3) streams against "
                 "asyncops-bench-ws-stub on this port and print what each received")
      ->check(CLI::Range(1, 65535));
  app.add_option("--data-dir", o.data_dir, "Empty data dir for the daemon (default: a new /tmp/aosse-XXXXXX)");
  app.add_option("--daemon-arg", o.daemon_args, "Extra daemon argument; may repeat");
  app.add_option("--daemon-nofile", o.daemon_nofile,
                 "Soft RLIMIT_NOFILE for asyncopsd (default: this process's, raised to the hard limit)")
      ->check(CLI::Range(64L, 1L << 20));
  app.add_option("--out", o.out, "JSON results file");
  bool watchers_given = false, commands_given = false;
  try {
    app.parse(argc, argv);
    watchers_given = app.count("--watchers") > 0;
    commands_given = app.count("--commands") > 0;
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.quick) {
    if (!watchers_given) o.watchers = o.ws_watchers > 0 ? 0 : 200;
    if (!commands_given) o.commands = 1000;
    o.deadline_s = std::min(o.deadline_s, 60);
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (ws_selftest_port > 0) {
    // The stub sends seq 1, 2, 3 (pending, processing, completed; the last
    // in two fragments) after a ping, then {"end": id}.
    int n = o.ws_watchers > 0 ? o.ws_watchers : 3;
    std::vector<std::string> ids;
    for (int k = 0; k < n; ++k) ids.push_back("op-" + std::to_string(k));
    WatcherSet set(ws_selftest_port, ids, 0, o.connect_window);
    set.start();
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (set.finished() < n && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    set.stop();
    int good = 0;
    for (const auto& w : set.watchers()) {
      bool ok = w.clean_end && w.ws_end && w.ids == std::vector<int64_t>{1, 2, 3} && w.bad_events == 0 &&
                w.pings >= 1 && w.states.size() == 3 && w.states[2] == "completed";
      good += ok ? 1 : 0;
      std::printf("%s %s ids=%s states=%s pings=%d clean=%d error='%s'\n", ok ? "OK  " : "FAIL", w.op_id.c_str(),
                  json(w.ids).dump().c_str(), json(w.states).dump().c_str(), w.pings, w.clean_end ? 1 : 0,
                  w.error.c_str());
    }
    std::printf("ws selftest: %d of %d streams received 1, 2, 3 and the end\n", good, n);
    return good == n ? 0 : 1;
  }
  if (o.daemon_bin.empty() || o.worker_bin.empty()) {
    std::cerr << "--daemon and --worker are required\n";
    return 2;
  }

  // One fd per watcher here and in the daemon: raise the soft limit to the
  // hard one (children inherit it).
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (o.watchers + o.ws_watchers < 1) {
    std::cerr << "--watchers and --ws-watchers are both 0: nothing to watch\n";
    return 2;
  }
  const int total_watchers = o.watchers + o.ws_watchers;
  if (rl.rlim_cur < static_cast<rlim_t>(total_watchers) + 256) {
    std::cerr << "RLIMIT_NOFILE is " << rl.rlim_cur << ", too low for " << total_watchers << " watchers\n";
    return 2;
  }
  if (o.data_dir.empty()) {
    char tmpl[] = "/tmp/aosse-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 2;
    }
    o.data_dir = tmpl;
  }
  std::string tag = "b" + std::to_string(::getpid()) + "x" + std::to_string(asyncops::now_ms() % 100000000);
  json report;
  report["config"] = {{"watchers", o.watchers},        {"ws_watchers", o.ws_watchers},
                      {"commands_per_phase", o.commands},
                      {"connections", o.connections},  {"workers", o.workers},
                      {"connect_window", o.connect_window}, {"deadline_s", o.deadline_s},
                      {"quick", o.quick},              {"data_dir", o.data_dir},
                      {"daemon_args", o.daemon_args},  {"rlimit_nofile", static_cast<long>(rl.rlim_cur)},
                      {"daemon_nofile", o.daemon_nofile > 0 ? o.daemon_nofile : static_cast<long>(rl.rlim_cur)},
                      {"nproc", std::thread::hardware_concurrency()}};
  auto T0 = Clock::now();
  auto log = [&](const std::string& s) {
    std::cerr << "[" << fmt(ms_since(T0) / 1000.0, 1) << "s] " << s << std::endl;
  };

  // --- daemon
  std::vector<std::string> dargs = {o.daemon_bin, "--data-dir", o.data_dir, "--listen", "127.0.0.1:0"};
  for (const auto& a : o.daemon_args) dargs.push_back(a);
  pid_t daemon = spawn(dargs, o.data_dir + "/daemon.log", o.daemon_nofile);
  int port = read_port(o.data_dir, std::chrono::seconds(20));
  if (port <= 0) {
    std::cerr << "asyncopsd did not start; see " << o.data_dir << "/daemon.log\n";
    stop_process(daemon, std::chrono::seconds(2));
    return 1;
  }
  log("asyncopsd pid " + std::to_string(daemon) + " on 127.0.0.1:" + std::to_string(port));

  // --- /proc sampler
  std::mutex sample_mu;
  std::vector<ProcSample> samples;
  std::string cur_phase = "startup";
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      ProcSample s;
      if (read_proc(daemon, &s)) {
        std::lock_guard<std::mutex> lock(sample_mu);
        s.t_s = ms_since(T0) / 1000.0;
        s.phase = cur_phase;
        samples.push_back(s);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto set_phase = [&](const std::string& p) {
    std::lock_guard<std::mutex> lock(sample_mu);
    cur_phase = p;
  };
  std::vector<pid_t> workers;
  auto start_workers = [&] {
    for (int k = 0; k < o.workers; ++k) {
      workers.push_back(spawn({o.worker_bin, "--data-dir", o.data_dir}, o.data_dir + "/worker.log"));
    }
  };
  auto stop_workers = [&] {
    for (pid_t p : workers) stop_process(p, std::chrono::seconds(10));
    workers.clear();
  };
  int exit_code = 0;

  // --- phase A: no workers, no watchers
  set_phase("A_no_workers_no_watchers");
  log("phase A: " + std::to_string(o.commands) + " commands, no workers, no watchers");
  PhaseResult a = submit_phase("A_no_workers_no_watchers", port, o.commands, o.connections, tag + "a", false);
  log("  p50 " + fmt(percentile(a.lat_ms, 0.5)) + " ms, p99 " + fmt(percentile(a.lat_ms, 0.99)) + " ms");

  // --- phase B: workers, no watchers (the fair baseline for phase C)
  set_phase("B_workers_no_watchers");
  start_workers();
  log("phase B: " + std::to_string(o.commands) + " commands, " + std::to_string(o.workers) +
      " workers (also draining phase A), no watchers");
  PhaseResult b = submit_phase("B_workers_no_watchers", port, o.commands, o.connections, tag + "b", false);
  log("  p50 " + fmt(percentile(b.lat_ms, 0.5)) + " ms, p99 " + fmt(percentile(b.lat_ms, 0.99)) + " ms");
  bool quiet_b = wait_quiet(port, std::chrono::seconds(o.deadline_s));
  log(std::string("  all operations finished: ") + (quiet_b ? "yes" : "NO (deadline)"));
  stop_workers();
  ProcSample before;
  read_proc(daemon, &before);

  // --- watched operations: accepted while no worker runs, so they stay pending
  set_phase("watch_setup");
  PhaseResult wsub = submit_phase("watched_submit", port, total_watchers, o.connections, tag + "w", true);
  std::vector<std::string> ids;
  size_t sse_count = 0;
  for (size_t k = 0; k < wsub.ids.size(); ++k) {
    if (wsub.ids[k].empty()) continue;
    ids.push_back(wsub.ids[k]);
    if (k < static_cast<size_t>(o.watchers)) ++sse_count;
  }
  log("submitted " + std::to_string(ids.size()) + " watched operations (" + std::to_string(wsub.errors) +
      " errors); opening " + std::to_string(sse_count) + " SSE and " + std::to_string(ids.size() - sse_count) +
      " WebSocket streams");
  WatcherSet ws(port, ids, sse_count, o.connect_window);
  long lo_watch0 = listen_overflows();
  auto tw = Clock::now();
  ws.start();
  auto first_deadline = Clock::now() + std::chrono::seconds(o.deadline_s);
  while (ws.first_events() + ws.finished() < static_cast<int>(ids.size()) && Clock::now() < first_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double all_first_ms = ms_since(tw);
  int first_ok = ws.first_events();
  long lo_watch = listen_overflows() - lo_watch0;
  std::vector<double> first_ms;  // each watcher: connect() to its first event
  for (const auto& w : ws.watchers()) {
    if (!w.ids.empty()) first_ms.push_back(std::chrono::duration<double, std::milli>(w.t_first - w.t_start).count());
  }
  long slow_first = std::count_if(first_ms.begin(), first_ms.end(), [](double v) { return v > 900; });
  log("first event on " + std::to_string(first_ok) + "/" + std::to_string(ids.size()) + " streams after " +
      fmt(all_first_ms, 0) + " ms; open " + std::to_string(ws.open_streams()));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a couple of samples with all streams idle
  long metric_clients = sse_clients_metric(port);
  ProcSample idle_open;
  read_proc(daemon, &idle_open);
  log("daemon with streams open: threads " + std::to_string(idle_open.threads) + ", fds " +
      std::to_string(idle_open.fds) + ", RSS " + std::to_string(idle_open.rss_kb / 1024) +
      " MiB; asyncops_sse_clients " + std::to_string(metric_clients));

  // --- phase C: workers and watchers
  set_phase("C_workers_and_watchers");
  start_workers();
  log("phase C: " + std::to_string(o.commands) + " commands, " + std::to_string(o.workers) +
      " workers, " + std::to_string(ws.open_streams()) + " open streams");
  PhaseResult c = submit_phase("C_workers_and_watchers", port, o.commands, o.connections, tag + "c", false);
  log("  p50 " + fmt(percentile(c.lat_ms, 0.5)) + " ms, p99 " + fmt(percentile(c.lat_ms, 0.99)) + " ms");
  auto end_deadline = Clock::now() + std::chrono::seconds(o.deadline_s);
  while (ws.finished() < static_cast<int>(ids.size()) && Clock::now() < end_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  set_phase("after_streams");
  bool all_finished = ws.finished() >= static_cast<int>(ids.size());
  log("streams finished: " + std::to_string(ws.finished()) + "/" + std::to_string(ids.size()) +
      (all_finished ? "" : " (deadline)"));
  ws.stop();
  ProcSample after;
  read_proc(daemon, &after);
  bool quiet_c = wait_quiet(port, std::chrono::seconds(o.deadline_s));

  // --- phase D: workers, streams closed again (a second baseline after C,
  // so that drift from other load on the host shows)
  set_phase("D_workers_after_watchers");
  log("phase D: " + std::to_string(o.commands) + " commands, " + std::to_string(o.workers) +
      " workers, streams closed");
  PhaseResult d = submit_phase("D_workers_after_watchers", port, o.commands, o.connections, tag + "d", false);
  log("  p50 " + fmt(percentile(d.lat_ms, 0.5)) + " ms, p99 " + fmt(percentile(d.lat_ms, 0.99)) + " ms");
  quiet_c = wait_quiet(port, std::chrono::seconds(o.deadline_s)) && quiet_c;

  // --- verify against each operation's history
  set_phase("verify");
  Conn vc(port);
  long events = 0, lost = 0, dup = 0, out_of_order = 0, unexpected = 0, heartbeats = 0;
  int clean = 0, failed_watchers = 0, no_first = 0, first_not_pending = 0, history_errors = 0;
  std::map<std::string, int> errors_by_kind;
  std::map<std::string, int> final_states;
  std::map<std::string, int> events_per_watcher;
  std::map<std::string, int> history_kinds;
  json failures = json::array();
  struct KindTotals {
    long watchers = 0, events = 0, lost = 0, dup = 0, clean = 0, failed = 0, pings = 0;
  };
  std::map<std::string, KindTotals> by_kind;
  for (auto& w : ws.watchers()) {
    events += static_cast<long>(w.ids.size());
    ++events_per_watcher[std::to_string(w.ids.size())];
    heartbeats += w.heartbeats;
    Response r;
    std::string err;
    std::vector<int64_t> hist;
    std::vector<std::string> hist_states;
    if (vc.roundtrip(get_request("/operations/" + w.op_id + "/history", port), &r, &err) && r.status == 200) {
      json j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j["items"].is_array()) {
        for (const auto& it : j["items"]) {
          hist.push_back(it.value("seq", int64_t{-1}));
          hist_states.push_back(it.value("state", ""));
          ++history_kinds[it.value("kind", "")];
        }
      }
    }
    if (hist.empty()) ++history_errors;
    long w_lost = 0, w_dup = 0, w_ooo = 0, w_unexp = 0;
    std::set<int64_t> got(w.ids.begin(), w.ids.end());
    w_dup = static_cast<long>(w.ids.size() - got.size());
    for (size_t k = 1; k < w.ids.size(); ++k) {
      if (w.ids[k] <= w.ids[k - 1]) ++w_ooo;
    }
    std::set<int64_t> hset(hist.begin(), hist.end());
    for (int64_t id : got) {
      if (!hset.count(id)) ++w_unexp;
    }
    if (w.ids.empty()) {
      ++no_first;
      w_lost = static_cast<long>(hist.size());  // nothing received at all
    } else {
      int64_t first = w.ids.front();
      for (size_t k = 0; k < hist.size(); ++k) {
        if (hist[k] == first && hist_states[k] != "pending") ++first_not_pending;
        if (hist[k] >= first && !got.count(hist[k])) ++w_lost;
      }
    }
    if (!hist_states.empty()) ++final_states[hist_states.back()];
    bool terminal_history = !hist_states.empty() && is_terminal_state(hist_states.back());
    bool ok = w.clean_end && w_lost == 0 && w_dup == 0 && w_ooo == 0 && w_unexp == 0 && w.bad_events == 0 &&
              !w.event_after_terminal && terminal_history && !w.states.empty() && w.states.back() == hist_states.back();
    KindTotals& kt = by_kind[w.ws ? "websocket" : "sse"];
    kt.watchers++;
    kt.events += static_cast<long>(w.ids.size());
    kt.lost += w_lost;
    kt.dup += w_dup;
    kt.clean += w.clean_end ? 1 : 0;
    kt.failed += ok ? 0 : 1;
    kt.pings += w.pings;
    lost += w_lost;
    dup += w_dup;
    out_of_order += w_ooo;
    unexpected += w_unexp;
    if (w.clean_end) ++clean;
    if (!w.error.empty()) ++errors_by_kind[w.error];
    if (!ok) {
      ++failed_watchers;
      if (failures.size() < 20) {
        failures.push_back({{"op_id", w.op_id},
                            {"kind", w.ws ? "websocket" : "sse"},
                            {"received", w.ids},
                            {"states", w.states},
                            {"history", hist},
                            {"history_states", hist_states},
                            {"lost", w_lost},
                            {"duplicates", w_dup},
                            {"error", w.error},
                            {"http_status", w.status}});
      }
    }
  }

  // --- daemon resources
  ProcSample peak_watch, peak_before;
  {
    std::lock_guard<std::mutex> lock(sample_mu);
    for (const auto& s : samples) {
      ProcSample* p = (s.phase == "watch_setup" || s.phase == "C_workers_and_watchers") ? &peak_watch
                      : (s.phase.rfind("A_", 0) == 0 || s.phase.rfind("B_", 0) == 0) ? &peak_before
                                                                                       : nullptr;
      if (!p) continue;
      p->rss_kb = std::max(p->rss_kb, s.rss_kb);
      p->hwm_kb = std::max(p->hwm_kb, s.hwm_kb);
      p->threads = std::max(p->threads, s.threads);
      p->fds = std::max(p->fds, s.fds);
    }
  }
  std::string daemon_exit;
  bool daemon_alive = alive(daemon, &daemon_exit);

  double p99b = percentile(b.lat_ms, 0.99), p99c = percentile(c.lat_ms, 0.99);
  double p99a = percentile(a.lat_ms, 0.99);
  report["phases"] = {phase_json(a), phase_json(b), phase_json(wsub), phase_json(c), phase_json(d)};
  report["accept_latency"] = {
      {"p50_ms_without_watchers", percentile(b.lat_ms, 0.5)},
      {"p99_ms_without_watchers", p99b},
      {"p50_ms_with_watchers", percentile(c.lat_ms, 0.5)},
      {"p99_ms_with_watchers", p99c},
      {"p99_ratio_with_over_without", p99b > 0 ? p99c / p99b : 0},
      {"p99_ms_no_workers_no_watchers", p99a},
      {"p99_ms_after_watchers", percentile(d.lat_ms, 0.99)},
      {"p99_ratio_with_over_after", percentile(d.lat_ms, 0.99) > 0 ? p99c / percentile(d.lat_ms, 0.99) : 0},
      {"note", "without = phase B (workers running, no watchers); with = phase C (workers + watchers)"}};
  json kinds = json::object();
  for (const auto& [k, t] : by_kind) {
    kinds[k] = {{"watchers", t.watchers}, {"events_received", t.events}, {"lost", t.lost},
                {"duplicates", t.dup},    {"ended_cleanly", t.clean},     {"failed", t.failed},
                {"pings_answered", t.pings}};
  }
  report["watchers"] = {{"watchers", ids.size()},
                        {"by_kind", kinds},
                        {"first_event_received", first_ok},
                        {"all_first_events_ms", all_first_ms},
                        {"all_connected_and_first_event_ms", ws.connect_all_ms()},
                        {"connect_to_first_event_ms_p50", percentile(first_ms, 0.5)},
                        {"connect_to_first_event_ms_p99", percentile(first_ms, 0.99)},
                        {"connect_to_first_event_ms_max", percentile(first_ms, 1.0)},
                        {"connect_to_first_event_over_900ms", slow_first},
                        {"host_listen_overflows_while_connecting", lo_watch},
                        {"events_received", events},
                        {"lost", lost},
                        {"duplicates", dup},
                        {"out_of_order", out_of_order},
                        {"unexpected_ids", unexpected},
                        {"no_event_at_all", no_first},
                        {"first_event_not_pending", first_not_pending},
                        {"heartbeats", heartbeats},
                        {"streams_ended_cleanly", clean},
                        {"streams_finished_before_deadline", all_finished},
                        {"watchers_failed", failed_watchers},
                        {"history_read_errors", history_errors},
                        {"final_states", final_states},
                        {"events_per_watcher", events_per_watcher},
                        {"history_kinds", history_kinds},
                        {"stream_errors", errors_by_kind},
                        {"delivery_lag_ms_p50", percentile(ws.lag_ms(), 0.5)},
                        {"delivery_lag_ms_p99", percentile(ws.lag_ms(), 0.99)},
                        {"delivery_lag_ms_max", percentile(ws.lag_ms(), 1.0)},
                        {"first_failures", failures}};
  report["daemon"] = {{"alive_at_end", daemon_alive},
                      {"died", daemon_exit},
                      {"sse_clients_metric_with_streams_open", metric_clients},
                      {"before_watchers", {{"threads", before.threads}, {"fds", before.fds},
                                           {"rss_kb", before.rss_kb}, {"vm_hwm_kb", before.hwm_kb}}},
                      {"streams_open_idle", {{"threads", idle_open.threads}, {"fds", idle_open.fds},
                                             {"rss_kb", idle_open.rss_kb}, {"vm_hwm_kb", idle_open.hwm_kb}}},
                      {"peak_while_watching", {{"threads", peak_watch.threads}, {"fds", peak_watch.fds},
                                               {"rss_kb", peak_watch.rss_kb}, {"vm_hwm_kb", peak_watch.hwm_kb}}},
                      {"peak_phases_a_b", {{"threads", peak_before.threads}, {"fds", peak_before.fds},
                                           {"rss_kb", peak_before.rss_kb}, {"vm_hwm_kb", peak_before.hwm_kb}}},
                      {"after_streams", {{"threads", after.threads}, {"fds", after.fds},
                                         {"rss_kb", after.rss_kb}, {"vm_hwm_kb", after.hwm_kb}}}};
  report["all_operations_finished"] = quiet_b && quiet_c;
  bool pass = lost == 0 && dup == 0 && out_of_order == 0 && unexpected == 0 && failed_watchers == 0 &&
              static_cast<int>(ids.size()) == total_watchers && clean == total_watchers && a.errors == 0 &&
              b.errors == 0 && c.errors == 0 && d.errors == 0 && wsub.errors == 0 && daemon_alive;
  report["pass"] = pass;
  report["elapsed_s"] = ms_since(T0) / 1000.0;

  // --- shut down
  sampling = false;
  sampler.join();
  stop_workers();
  if (daemon_alive) {
    int dstatus = stop_process(daemon, std::chrono::seconds(15));
    report["daemon"]["clean_exit"] = dstatus >= 0 && WIFEXITED(dstatus) && WEXITSTATUS(dstatus) == 0;
  } else {
    report["daemon"]["clean_exit"] = false;
  }

  std::ofstream(o.out) << report.dump(2) << "\n";

  // --- human table
  auto row = [](const std::string& k, const std::string& v) {
    std::printf("  %-44s %s\n", k.c_str(), v.c_str());
  };
  std::printf("\nasyncops SSE watchers benchmark (%s)\n", o.quick ? "quick" : "full");
  row("watchers (SSE + WebSocket streams)", std::to_string(ids.size()) + " of " + std::to_string(total_watchers) +
                                                 " (" + std::to_string(sse_count) + " SSE, " +
                                                 std::to_string(ids.size() - sse_count) + " WebSocket)");
  for (const auto& [k, t] : by_kind) {
    row("  " + k + ": events / lost / duplicated / failed",
        std::to_string(t.events) + " / " + std::to_string(t.lost) + " / " + std::to_string(t.dup) + " / " +
            std::to_string(t.failed));
  }
  row("first event received", std::to_string(first_ok) + " (all within " + fmt(all_first_ms, 0) + " ms)");
  row("connect->first event p50 / p99 / max (ms)", fmt(percentile(first_ms, 0.5), 1) + " / " +
                                                      fmt(percentile(first_ms, 0.99), 1) + " / " +
                                                      fmt(percentile(first_ms, 1.0), 1) + "  (" +
                                                      std::to_string(slow_first) + " over 900 ms)");
  row("host ListenOverflows while connecting", std::to_string(lo_watch));
  row("events received", std::to_string(events));
  row("lost", std::to_string(lost));
  row("duplicates", std::to_string(dup));
  row("out of order / unexpected ids", std::to_string(out_of_order) + " / " + std::to_string(unexpected));
  row("streams ended cleanly (terminal, last chunk)", std::to_string(clean));
  row("watchers failed", std::to_string(failed_watchers));
  row("SSE delivery lag p50 / p99 / max (ms)", fmt(percentile(ws.lag_ms(), 0.5), 0) + " / " +
                                                   fmt(percentile(ws.lag_ms(), 0.99), 0) + " / " +
                                                   fmt(percentile(ws.lag_ms(), 1.0), 0));
  std::printf("\n  %-26s %6s %4s %7s %7s %7s %8s %7s %9s\n", "accept latency (POST /users)", "n", "err",
              "p50 ms", "p90 ms", "p99 ms", "max ms", "req/s", "conn max");
  for (const PhaseResult* p : {&a, &b, &c, &d}) {
    std::printf("  %-26s %6d %4d %7.2f %7.2f %7.2f %8.2f %7.0f %9.1f\n", p->name.c_str(), p->accepted,
                p->errors, percentile(p->lat_ms, 0.5), percentile(p->lat_ms, 0.9), percentile(p->lat_ms, 0.99),
                percentile(p->lat_ms, 1.0), p->wall_s > 0 ? p->accepted / p->wall_s : 0,
                percentile(p->connect_ms, 1.0));
  }
  std::printf("\n");
  row("p99 ratio with / without watchers (C / B)", fmt(p99b > 0 ? p99c / p99b : 0));
  row("p99 ratio with / after watchers (C / D)",
      fmt(percentile(d.lat_ms, 0.99) > 0 ? p99c / percentile(d.lat_ms, 0.99) : 0));
  std::printf("\n  %-30s %8s %8s %10s %10s\n", "daemon", "threads", "fds", "RSS MiB", "VmHWM MiB");
  auto prow = [](const char* k, const ProcSample& s) {
    std::printf("  %-30s %8ld %8ld %10.1f %10.1f\n", k, s.threads, s.fds, s.rss_kb / 1024.0, s.hwm_kb / 1024.0);
  };
  prow("before watchers", before);
  prow("streams open, idle", idle_open);
  prow("peak while watching", peak_watch);
  prow("after streams ended", after);
  if (!errors_by_kind.empty()) {
    std::printf("\n  stream errors:\n");
    for (const auto& [e, n] : errors_by_kind) std::printf("    %5d  %s\n", n, e.c_str());
  }
  for (const PhaseResult* p : {&a, &b, &wsub, &c, &d}) {
    if (!p->first_error.empty()) std::printf("  %s first error: %s\n", p->name.c_str(), p->first_error.c_str());
  }
  if (!daemon_alive) std::printf("\n  asyncopsd DIED during the run: %s (see daemon.log)\n", daemon_exit.c_str());
  std::printf("\n  result: %s   (JSON: %s)\n", pass ? "PASS" : "FAIL", o.out.c_str());
  if (!pass) exit_code = 1;
  return exit_code;
}
