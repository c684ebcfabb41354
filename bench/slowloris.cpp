// asyncops-bench-slowloris: what slow clients cost a new one (issue 11).
//
// Opens --conns connections (default 10,000) to a loopback HTTP server and
// keeps each one sending a request head one byte every --interval seconds
// (default 3), never finishing it, as the Slowloris attack does. A
// connection the server closes is counted and, unless --no-reconnect,
// opened again, so that the attack keeps its size. Meanwhile a probe opens a
// NEW connection for each POST (open loop, --probe-rate per second) and
// measures its latency from the request's due time to the last byte of the
// answer, first with no slow connections (baseline), then with all of them
// open. Prints one JSON object (or writes it to --out).
//
//   asyncops-bench-slowloris (--url http://127.0.0.1:PORT | --url-file F)
//       [--conns 10000] [--interval 3] [--connect-window 256]
//       [--connect-timeout 60] [--probe-rate 20] [--probe-seconds 15]
//       [--probe-timeout 10] [--path /users] [--no-reconnect] [--out FILE]
//
// Bounded: the connect phase by --connect-timeout, each probe phase by
// --probe-seconds plus --probe-timeout; the whole run by their sum. Only
// loopback addresses are accepted. RLIMIT_NOFILE is raised to what the
// connections need (at most the hard limit; fewer connections otherwise).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.h"

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "asyncops-bench-slowloris: " << msg << "\n";
  std::exit(2);
}

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int conns = 10000;
  double interval_s = 3;
  int connect_window = 256;
  double connect_timeout_s = 60;
  double probe_rate = 20;
  double probe_seconds = 15;
  double probe_timeout_s = 10;
  std::string path = "/users";
  bool reconnect = true;
  std::string out;
};

void parse_url(Options& o, const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) die("--url must start with http://");
  std::string rest = url.substr(scheme.size());
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) die("--url needs a port");
  o.host = rest.substr(0, colon);
  o.port = std::atoi(rest.substr(colon + 1).c_str());
  in_addr a{};
  if (inet_pton(AF_INET, o.host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
    die("only loopback IPv4 addresses (127.x.x.x) are allowed, not " + o.host);
  }
}

sockaddr_in address(const Options& o) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr);
  return sa;
}

// Raises the soft fd limit to want (at most the hard limit); returns it.
long raise_nofile(long want) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) < want) {
    rlim_t target = static_cast<rlim_t>(want);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < target) target = rl.rlim_max;
    rl.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return rl.rlim_cur == RLIM_INFINITY ? want : static_cast<long>(rl.rlim_cur);
}

// ------------------------------------------------------------------ probe

struct ProbeResult {
  std::vector<double> ms;  // answered requests, from due time
  int timeouts = 0, errors = 0, non_2xx = 0;
  std::map<int, int> statuses;
};

// One POST on a new connection; returns the status, 0 on a transport
// error, -1 on a timeout. deadline bounds connect, send and receive.
int probe_once(const Options& o, const std::string& req, Clock::time_point deadline) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa = address(o);
  auto wait_for = [&](short ev) -> int {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return -1;
    pollfd p{fd, ev, 0};
    int r = poll(&p, 1, static_cast<int>(left));
    if (r == 0) return -1;
    return r < 0 ? 0 : 1;
  };
  int status = 0;
  std::string in;
  size_t sent = 0;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 && errno != EINPROGRESS) goto done;
  {
    int w = wait_for(POLLOUT);
    if (w <= 0) {
      status = w;
      goto done;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) goto done;
  }
  while (sent < req.size()) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      int w = wait_for(POLLOUT);
      if (w <= 0) {
        status = w;
        goto done;
      }
      continue;
    }
    goto done;
  }
  // Read the head, then Content-Length bytes of body (the server closes
  // the connection: Connection: close was sent).
  for (;;) {
    int w = wait_for(POLLIN);
    if (w <= 0) {
      status = w;
      goto done;
    }
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) in.append(buf, static_cast<size_t>(n));
    auto head_end = in.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      size_t body_len = 0;
      std::string lower = in.substr(0, head_end);
      std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
      auto cl = lower.find("\r\ncontent-length:");
      if (cl != std::string::npos) body_len = std::strtoul(lower.c_str() + cl + 17, nullptr, 10);
      if (in.size() >= head_end + 4 + body_len || n == 0) {
        if (in.compare(0, 9, "HTTP/1.1 ") == 0 || in.compare(0, 9, "HTTP/1.0 ") == 0) {
          status = std::atoi(in.c_str() + 9);
        }
        goto done;
      }
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) goto done;
  }
done:
  close(fd);
  return status;
}

// Open loop: request k is due at start + k/rate; it runs on one of a few
// threads, each on its own new connection.
ProbeResult run_probe(const Options& o, const std::string& tag) {
  ProbeResult res;
  std::mutex m;
  const int planned = std::max(1, static_cast<int>(o.probe_rate * o.probe_seconds));
  const int threads = std::max(1, std::min(64, static_cast<int>(std::ceil(o.probe_rate * o.probe_timeout_s / 4))));
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int k; (k = next++) < planned;) {
        auto due = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(k / o.probe_rate));
        std::this_thread::sleep_until(due);
        std::string body = R"({"email":"slow-)" + tag + "-" + std::to_string(k) + R"(@example.com","name":"Probe"})";
        std::string req = "POST " + o.path + " HTTP/1.1\r\nHost: " + o.host + ":" + std::to_string(o.port) +
                          "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
        auto deadline = due + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.probe_timeout_s));
        int status = probe_once(o, req, deadline);
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - due).count();
        std::lock_guard<std::mutex> lock(m);
        if (status == -1) {
          res.timeouts++;
        } else if (status == 0) {
          res.errors++;
        } else {
          res.statuses[status]++;
          res.ms.push_back(ms);
          if (status < 200 || status > 299) res.non_2xx++;
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  return res;
}

json probe_json(ProbeResult& r, const Options& o) {
  std::sort(r.ms.begin(), r.ms.end());
  auto pct = [&](double p) -> json {
    if (r.ms.empty()) return nullptr;
    size_t i = static_cast<size_t>(std::ceil(p / 100 * r.ms.size()));
    return std::round(r.ms[std::min(r.ms.size() - 1, i == 0 ? 0 : i - 1)] * 1000) / 1000;
  };
  json statuses = json::object();
  for (auto& [s, n] : r.statuses) statuses[std::to_string(s)] = n;
  return {{"planned", static_cast<int>(o.probe_rate * o.probe_seconds)},
          {"rate_per_s", o.probe_rate},
          {"answered", r.ms.size()},
          {"timeouts", r.timeouts},
          {"transport_errors", r.errors},
          {"non_2xx", r.non_2xx},
          {"statuses", statuses},
          {"p50_ms", pct(50)},
          {"p99_ms", pct(99)},
          {"max_ms", r.ms.empty() ? json(nullptr) : json(std::round(r.ms.back() * 1000) / 1000)},
          {"timeout_s", o.probe_timeout_s}};
}

// ------------------------------------------------------------------ slow connections

// The endless request head: a request line, then header lines, sent one
// byte at a time. It never reaches the blank line that would end it.
const std::string k_head_start = "POST /users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n";
char head_byte(uint64_t i) {
  if (i < k_head_start.size()) return k_head_start[i];
  static const std::string line = "X-Slow: aaaaaaaaaaaaaaaa\r\n";
  return line[(i - k_head_start.size()) % line.size()];
}

struct Slow {
  int fd = -1;
  bool connected = false;
  uint64_t sent = 0;
  Clock::time_point next_send;
  Clock::time_point connect_started;
};

class SlowSet {
 public:
  explicit SlowSet(const Options& o) : m_o(o), m_conns(static_cast<size_t>(o.conns)) {
    m_ep = epoll_create1(EPOLL_CLOEXEC);
    if (m_ep < 0) die("epoll_create1 failed");
  }
  ~SlowSet() {
    for (auto& c : m_conns)
      if (c.fd >= 0) close(c.fd);
    close(m_ep);
  }

  // Connects all, at most connect_window at a time; returns when all are
  // connected or the timeout passed. Then keeps them dribbling in a thread
  // until stop().
  void connect_all() {
    auto deadline = Clock::now() + to_dur(m_o.connect_timeout_s);
    size_t next = 0;
    while (Clock::now() < deadline && (m_connected < m_conns.size())) {
      while (next < m_conns.size() && m_connecting < m_o.connect_window) start_connect(next++);
      // Re-open those the server closed while others were connecting.
      if (next >= m_conns.size() && m_o.reconnect) reopen_closed(deadline);
      pump(10);
      if (next >= m_conns.size() && m_connecting == 0 && m_connected + m_failed_now() >= m_conns.size()) break;
    }
    m_connect_s = std::chrono::duration<double>(Clock::now() - m_t0).count();
    m_connected_after_connect_phase = m_connected;
  }
  void start_background() {
    m_thread = std::thread([this] {
      while (!m_stop.load()) {
        pump(10);
        if (m_o.reconnect) reopen_closed(Clock::now() + to_dur(1));
      }
    });
  }
  void stop() {
    m_stop = true;
    if (m_thread.joinable()) m_thread.join();
  }
  json stats() const {
    return {{"target", m_conns.size()},
            {"connected_after_connect_phase", m_connected_after_connect_phase},
            {"connect_phase_s", std::round(m_connect_s * 1000) / 1000},
            {"open_at_end", m_connected},
            {"min_open_while_probing", m_min_open == SIZE_MAX ? json(nullptr) : json(m_min_open)},
            {"closed_by_server", m_closed_by_server},
            {"connect_failures", m_connect_failures},
            {"reconnects", m_reconnects},
            {"bytes_sent", m_bytes},
            {"interval_s", m_o.interval_s}};
  }
  void mark_probe_start() { m_probing = true; }

 private:
  static Clock::duration to_dur(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }
  size_t m_failed_now() const { return m_dead.size(); }

  void start_connect(size_t i) {
    Slow& c = m_conns[i];
    c = Slow{};
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      m_connect_failures++;
      m_dead.push_back(i);
      return;
    }
    sockaddr_in sa = address(m_o);
    c.connect_started = Clock::now();
    int r = connect(c.fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (r != 0 && errno != EINPROGRESS) {
      close(c.fd);
      c.fd = -1;
      m_connect_failures++;
      m_dead.push_back(i);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = i;
    epoll_ctl(m_ep, EPOLL_CTL_ADD, c.fd, &ev);
    m_connecting++;
  }
  void reopen_closed(Clock::time_point deadline) {
    while (!m_dead.empty() && m_connecting < m_o.connect_window && Clock::now() < deadline) {
      size_t i = m_dead.back();
      m_dead.pop_back();
      m_reconnects++;
      start_connect(i);
    }
  }
  void drop(size_t i, bool by_server) {
    Slow& c = m_conns[i];
    if (c.fd < 0) return;
    epoll_ctl(m_ep, EPOLL_CTL_DEL, c.fd, nullptr);
    close(c.fd);
    c.fd = -1;
    if (c.connected) {
      m_connected--;
      if (by_server) m_closed_by_server++;
    } else {
      m_connecting--;
      m_connect_failures++;
    }
    c.connected = false;
    m_dead.push_back(i);
  }
  void send_byte(size_t i) {
    Slow& c = m_conns[i];
    char b = head_byte(c.sent);
    ssize_t n = send(c.fd, &b, 1, MSG_NOSIGNAL);
    if (n == 1) {
      c.sent++;
      m_bytes++;
    } else if (n < 0 && errno != EAGAIN) {
      drop(i, true);
      return;
    }
    c.next_send = Clock::now() + to_dur(m_o.interval_s);
    m_due.push_back({c.next_send, i});
  }
  // One round: epoll events (connects finishing, the server closing or
  // answering), then every connection whose next byte is due.
  void pump(int timeout_ms) {
    epoll_event evs[512];
    int n = epoll_wait(m_ep, evs, 512, timeout_ms);
    for (int k = 0; k < n; ++k) {
      size_t i = evs[k].data.u64;
      Slow& c = m_conns[i];
      if (c.fd < 0) continue;
      if (!c.connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (evs[k].events & (EPOLLERR | EPOLLHUP))) {
          drop(i, false);
          continue;
        }
        if (evs[k].events & EPOLLOUT) {
          c.connected = true;
          m_connecting--;
          m_connected++;
          epoll_event ev{};
          ev.events = EPOLLIN | EPOLLRDHUP;
          ev.data.u64 = i;
          epoll_ctl(m_ep, EPOLL_CTL_MOD, c.fd, &ev);
          send_byte(i);
        }
        continue;
      }
      // Connected: anything readable is an answer (say 408 or 431) or a
      // close; either way the server gave up on this connection.
      char buf[1024];
      ssize_t r = recv(c.fd, buf, sizeof buf, 0);
      if (r == 0 || (r < 0 && errno != EAGAIN) || r > 0 || (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        drop(i, true);
      }
    }
    // Due sends, oldest first (m_due is in send order, so in due order).
    auto now = Clock::now();
    while (m_due_head < m_due.size() && m_due[m_due_head].first <= now) {
      auto [when, i] = m_due[m_due_head++];
      Slow& c = m_conns[i];
      if (c.fd >= 0 && c.connected && c.next_send == when) send_byte(i);
    }
    if (m_due_head > 65536 && m_due_head * 2 > m_due.size()) {
      m_due.erase(m_due.begin(), m_due.begin() + static_cast<long>(m_due_head));
      m_due_head = 0;
    }
    if (m_probing && m_connected < m_min_open) m_min_open = m_connected;
  }

  const Options& m_o;
  std::vector<Slow> m_conns;
  std::vector<size_t> m_dead;  // closed or failed: to be opened again
  std::vector<std::pair<Clock::time_point, size_t>> m_due;
  size_t m_due_head = 0;
  int m_ep = -1;
  int m_connecting = 0;
  size_t m_connected = 0, m_connected_after_connect_phase = 0;
  size_t m_min_open = SIZE_MAX;
  std::atomic<bool> m_probing{false};
  uint64_t m_closed_by_server = 0, m_connect_failures = 0, m_reconnects = 0, m_bytes = 0;
  double m_connect_s = 0;
  Clock::time_point m_t0 = Clock::now();
  std::atomic<bool> m_stop{false};
  std::thread m_thread;
};

void usage() {
  std::cerr << "usage: asyncops-bench-slowloris (--url http://127.0.0.1:PORT | --url-file F) [--conns N]\n"
               "         [--interval S] [--connect-window W] [--connect-timeout S] [--probe-rate R]\n"
               "         [--probe-seconds S] [--probe-timeout S] [--path P] [--no-reconnect] [--out FILE]\n";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string url, url_file;
  FlagReader flags(argc, argv, usage);
  for (std::string a; flags.next(&a);) {
    if (a == "--url") url = flags.value();
    else if (a == "--url-file") url_file = flags.value();
    else if (a == "--conns") o.conns = std::atoi(flags.value().c_str());
    else if (a == "--interval") o.interval_s = std::atof(flags.value().c_str());
    else if (a == "--connect-window") o.connect_window = std::atoi(flags.value().c_str());
    else if (a == "--connect-timeout") o.connect_timeout_s = std::atof(flags.value().c_str());
    else if (a == "--probe-rate") o.probe_rate = std::atof(flags.value().c_str());
    else if (a == "--probe-seconds") o.probe_seconds = std::atof(flags.value().c_str());
    else if (a == "--probe-timeout") o.probe_timeout_s = std::atof(flags.value().c_str());
    else if (a == "--path") o.path = flags.value();
    else if (a == "--no-reconnect") o.reconnect = false;
    else if (a == "--out") o.out = flags.value();
    else flags.fail();
  }
  if (!url_file.empty()) {
    std::ifstream in(url_file);
    if (!(in >> url)) die("cannot read " + url_file);
  }
  if (url.empty()) die("--url or --url-file is required");
  parse_url(o, url);
  if (o.conns < 0 || o.conns > 100000) die("--conns must be in 0..100000");
  if (o.interval_s <= 0 || o.interval_s > 60) die("--interval must be in (0, 60] seconds");
  if (o.connect_window < 1) die("--connect-window must be at least 1");
  if (o.probe_rate <= 0 || o.probe_rate > 1000) die("--probe-rate must be in (0, 1000]");
  if (o.probe_seconds <= 0 || o.probe_seconds > 600) die("--probe-seconds must be in (0, 600]");
  if (o.connect_timeout_s <= 0 || o.connect_timeout_s > 600) die("--connect-timeout must be in (0, 600]");
  if (o.probe_timeout_s <= 0 || o.probe_timeout_s > 60) die("--probe-timeout must be in (0, 60]");

  // The slow connections, the probe's (at most 64 at once) and stdio.
  long want = static_cast<long>(o.conns) + 64 + 32;
  long got = raise_nofile(want);
  int requested = o.conns;
  if (got < want) o.conns = static_cast<int>(std::max(0L, got - 64 - 32));

  json doc;
  doc["url"] = url;
  doc["rlimit_nofile"] = got;
  doc["conns_requested"] = requested;
  std::cerr << "slowloris: baseline probe, " << o.probe_rate << "/s for " << o.probe_seconds << " s\n";
  ProbeResult base = run_probe(o, "b" + std::to_string(::getpid()));
  doc["baseline"] = probe_json(base, o);

  SlowSet slow(o);
  std::cerr << "slowloris: opening " << o.conns << " slow connections\n";
  slow.connect_all();
  slow.start_background();
  slow.mark_probe_start();
  std::cerr << "slowloris: probe under attack, " << o.probe_rate << "/s for " << o.probe_seconds << " s\n";
  ProbeResult attacked = run_probe(o, "s" + std::to_string(::getpid()));
  slow.stop();
  doc["under_attack"] = probe_json(attacked, o);
  doc["slow"] = slow.stats();

  std::string text = doc.dump(2);
  if (o.out.empty()) {
    std::cout << text << "\n";
  } else {
    std::ofstream out(o.out);
    out << text << "\n";
  }
  return 0;
}
