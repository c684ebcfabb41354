// asyncops-bench-loadgen: the benchmark's load generator and helpers.
//
// The load path uses raw POSIX sockets: one blocking keep-alive HTTP/1.1
// connection per thread, a prebuilt request per call, and a minimal response
// parser (status line, Content-Length, Connection: close). Only loopback
// addresses are accepted. Every loop is bounded by a count or a deadline.
//
// Subcommands (each prints one JSON object to stdout, or to --out FILE):
//   closed  --url U [--conns 32] [--duration S] [--requests N] [--path /users]
//           [--tag T]                 closed loop: each connection sends its
//                                     next request when the last is answered
//   open    --url U --rate R --duration S [--conns 32] [--path /users] [--tag T]
//                                     open loop: request k is due at
//                                     start + k/R; latency is measured from
//                                     the due time, so falling behind counts
//           closed and open take --body JSON: the body of every POST instead
//           of a new user (e.g. an order for bench/saga.sh)
//   drain   --url U [--timeout S] [--poll-ms 5]
//                                     waits until no operation is pending or
//                                     processing; prints when that was seen
//   ops     --url U --since-ms MS [--until-ms MS] [--max-pages N]
//                                     pages GET /operations and reports states
//                                     and end-to-end latency (updated_at -
//                                     created_at of terminal operations)
//   ready   (--url U | --url-file F) [--timeout S]
//                                     waits for GET /healthz = 200
//   report  --dir RUNDIR [--out FILE] merges a run's phase files into one
//                                     JSON document and prints a table
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/clock.h"

namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

int64_t epoch_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void die(const std::string& msg) {
  std::cerr << "asyncops-bench-loadgen: " << msg << "\n";
  std::exit(2);
}

// ------------------------------------------------------------------ options

struct Args {
  std::map<std::string, std::string> kv;
  std::string get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  double num(const std::string& k, double def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (!end || *end != '\0') die("--" + k + " needs a number, got '" + it->second + "'");
    return v;
  }
  bool has(const std::string& k) const { return kv.count(k) != 0; }
};

Args parse_args(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0) die("unexpected argument " + s);
    s = s.substr(2);
    if (i + 1 >= argc) die("--" + s + " needs a value");
    a.kv[s] = argv[++i];
  }
  return a;
}

void emit(const Args& a, const json& j) {
  std::string out = a.get("out");
  if (out.empty()) {
    std::cout << j.dump(2) << std::endl;
  } else {
    std::ofstream f(out, std::ios::trunc);
    f << j.dump(2) << "\n";
    if (!f) die("cannot write " + out);
  }
}

// ------------------------------------------------------------------ url

struct Url {
  std::string host;
  int port = 0;
  std::string host_header;
};

Url parse_url(const std::string& s) {
  const std::string p = "http://";
  if (s.rfind(p, 0) != 0) die("url must start with http://: " + s);
  std::string rest = s.substr(p.size());
  while (!rest.empty() && (rest.back() == '/' || rest.back() == '\n' || rest.back() == '\r')) rest.pop_back();
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) die("url needs a port: " + s);
  Url u;
  u.host = rest.substr(0, colon);
  u.port = std::atoi(rest.substr(colon + 1).c_str());
  if (u.host == "localhost") u.host = "127.0.0.1";
  in_addr addr{};
  if (inet_pton(AF_INET, u.host.c_str(), &addr) != 1 || (ntohl(addr.s_addr) >> 24) != 127) {
    die("only loopback IPv4 addresses are allowed: " + s);
  }
  if (u.port <= 0 || u.port > 65535) die("bad port in " + s);
  u.host_header = u.host + ":" + std::to_string(u.port);
  return u;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ------------------------------------------------------------------ http client

// One keep-alive connection, used by one thread.
class Conn {
 public:
  explicit Conn(const Url& u) : m_url(u) {}
  ~Conn() { close_fd(); }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connect_now() {
    close_fd();
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (m_fd < 0) return false;
    int one = 1;
    ::setsockopt(m_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};  // nothing waits forever
    ::setsockopt(m_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(m_fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(m_url.port));
    inet_pton(AF_INET, m_url.host.c_str(), &sa.sin_addr);
    if (::connect(m_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      close_fd();
      return false;
    }
    m_buf.clear();
    m_reused = false;
    ++m_connects;
    return true;
  }

  // Sends one request and reads the whole response. Returns the status code,
  // or -1 on a transport error. A request on a reused connection that the
  // server closed before answering is sent once more on a new connection.
  int roundtrip(const std::string& req, std::string* body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (m_fd < 0 && !connect_now()) return -1;
      bool reused = m_reused;
      int status = exchange(req, body);
      if (status > 0) {
        m_reused = true;
        if (m_close_after) close_fd();
        return status;
      }
      close_fd();
      if (!(reused && status == k_closed_early)) return -1;
    }
    return -1;
  }

  uint64_t connects() const { return m_connects; }

 private:
  static constexpr int k_closed_early = -2;

  void close_fd() {
    if (m_fd >= 0) ::close(m_fd);
    m_fd = -1;
  }

  int exchange(const std::string& req, std::string* body) {
    size_t off = 0;
    while (off < req.size()) {
      ssize_t n = ::send(m_fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        return k_closed_early;
      }
      off += static_cast<size_t>(n);
    }
    size_t header_end;
    bool got_any = !m_buf.empty();
    for (;;) {
      header_end = m_buf.find("\r\n\r\n");
      if (header_end != std::string::npos) break;
      if (m_buf.size() > 1 << 20) return -1;
      int r = fill();
      if (r == 0) return got_any ? -1 : k_closed_early;
      if (r < 0) return -1;
      got_any = true;
    }
    // Status line: HTTP/1.1 202 Accepted
    if (m_buf.compare(0, 5, "HTTP/") != 0) return -1;
    size_t sp = m_buf.find(' ');
    if (sp == std::string::npos || sp > header_end) return -1;
    int status = std::atoi(m_buf.c_str() + sp + 1);
    size_t content_length = 0;
    m_close_after = m_buf.compare(5, 3, "1.0") == 0;
    size_t line = m_buf.find("\r\n") + 2;
    while (line < header_end + 2) {
      size_t eol = m_buf.find("\r\n", line);
      size_t colon = m_buf.find(':', line);
      if (colon != std::string::npos && colon < eol) {
        std::string name = m_buf.substr(line, colon - line);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        size_t v = colon + 1;
        while (v < eol && m_buf[v] == ' ') ++v;
        if (name == "content-length") {
          content_length = std::strtoull(m_buf.c_str() + v, nullptr, 10);
        } else if (name == "connection") {
          std::string val = m_buf.substr(v, eol - v);
          for (auto& c : val) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          if (val.find("close") != std::string::npos) m_close_after = true;
        } else if (name == "transfer-encoding") {
          return -1;  // not produced by the servers measured here
        }
      }
      line = eol + 2;
    }
    size_t total = header_end + 4 + content_length;
    if (content_length > (64u << 20)) return -1;
    while (m_buf.size() < total) {
      if (fill() <= 0) return -1;
    }
    if (body) body->assign(m_buf, header_end + 4, content_length);
    m_buf.erase(0, total);
    return status;
  }

  int fill() {
    char tmp[16384];
    for (;;) {
      ssize_t n = ::recv(m_fd, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n > 0) m_buf.append(tmp, static_cast<size_t>(n));
      return n > 0 ? 1 : (n == 0 ? 0 : -1);
    }
  }

  Url m_url;
  int m_fd = -1;
  std::string m_buf;
  bool m_reused = false;
  bool m_close_after = false;
  uint64_t m_connects = 0;
};

std::string make_get(const Url& u, const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: " + u.host_header + "\r\nAccept: application/json\r\n\r\n";
}

// A POST /users with an email no other request of the run uses, or with
// fixed_body when it is not empty.
std::string make_post(const Url& u, const std::string& path, const std::string& tag, int thread,
                      uint64_t seq, const std::string& fixed_body) {
  char generated[160];
  const char* body = generated;
  int n;
  if (fixed_body.empty()) {
    n = std::snprintf(generated, sizeof generated, "{\"email\":\"b%s-%d-%llu@example.com\",\"name\":\"Bench User\"}",
                      tag.c_str(), thread, static_cast<unsigned long long>(seq));
  } else {
    body = fixed_body.data();
    n = static_cast<int>(fixed_body.size());
  }
  std::string req;
  req.reserve(256 + static_cast<size_t>(n));
  req += "POST ";
  req += path;
  req += " HTTP/1.1\r\nHost: ";
  req += u.host_header;
  req += "\r\nContent-Type: application/json\r\nContent-Length: ";
  req += std::to_string(n);
  req += "\r\n\r\n";
  req.append(body, static_cast<size_t>(n));
  return req;
}

// ------------------------------------------------------------------ stats

json latency_json(std::vector<uint32_t>& us) {
  json j;
  j["samples"] = us.size();
  if (us.empty()) return j;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(us.size())));
    if (rank < 1) rank = 1;
    return us[std::min(rank, us.size()) - 1] / 1000.0;
  };
  double sum = 0;
  for (uint32_t v : us) sum += v;
  j["p50_ms"] = pct(50);
  j["p90_ms"] = pct(90);
  j["p99_ms"] = pct(99);
  j["p999_ms"] = pct(99.9);
  j["max_ms"] = us.back() / 1000.0;
  j["mean_ms"] = sum / static_cast<double>(us.size()) / 1000.0;
  return j;
}

struct ThreadResult {
  std::vector<uint32_t> lat_us;
  std::map<int, uint64_t> statuses;
  uint64_t errors = 0;
  uint64_t late = 0;  // open loop: sent more than 1 ms after the due time
  uint64_t not_sent = 0;
  uint64_t connects = 0;
};

uint32_t to_us(SteadyClock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(us, 0, 4000000000LL));
}

// A start line for all threads: connections are opened first, then the
// clock starts for everyone at once.
class Barrier {
 public:
  explicit Barrier(int n) : m_left(n) {}
  void arrive_and_wait() {
    m_left.fetch_sub(1);
    for (int i = 0; i < 600000 && m_left.load() > 0; ++i) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }

 private:
  std::atomic<int> m_left;
};

json run_load(const Args& a, bool open_loop) {
  Url u = parse_url(a.get("url"));
  int conns = static_cast<int>(a.num("conns", 32));
  double duration = a.num("duration", 0);
  double requests_d = a.num("requests", 0);
  double rate = a.num("rate", 0);
  std::string path = a.get("path", "/users");
  std::string fixed_body = a.get("body", "");
  std::string tag = a.get("tag", std::to_string(epoch_ms() % 100000000));
  if (conns < 1 || conns > 1024) die("--conns must be in 1..1024");
  if (open_loop && (rate <= 0 || duration <= 0)) die("open needs --rate and --duration");
  if (!open_loop && duration <= 0 && requests_d <= 0) die("closed needs --duration or --requests");
  if (duration > 3600) die("--duration is capped at 3600 s");
  if (requests_d > 20e6) die("--requests is capped at 20,000,000");
  const uint64_t requests = static_cast<uint64_t>(requests_d);
  // Hard bound for every thread: the planned time plus a grace period; a
  // count-only run is bounded by 3600 s.
  const double hard_s = duration > 0 ? duration + a.num("grace", 30) : 3600;
  const uint64_t open_total = open_loop ? static_cast<uint64_t>(rate * duration) : 0;

  std::vector<ThreadResult> results(static_cast<size_t>(conns));
  std::atomic<uint64_t> issued{0};
  Barrier barrier(conns);
  SteadyClock::time_point start;
  std::atomic<bool> started{false};
  int64_t start_epoch_ms = 0;

  auto worker = [&](int t) {
    ThreadResult& r = results[static_cast<size_t>(t)];
    Conn c(u);
    c.connect_now();
    barrier.arrive_and_wait();
    if (t == 0) {
      start = SteadyClock::now();
      start_epoch_ms = epoch_ms();
      started.store(true, std::memory_order_release);
    }
    while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    const auto hard_deadline = start + std::chrono::milliseconds(static_cast<int64_t>(hard_s * 1000));
    const auto soft_deadline = duration > 0 ? start + std::chrono::milliseconds(static_cast<int64_t>(duration * 1000))
                                            : hard_deadline;
    if (!open_loop) r.lat_us.reserve(requests > 0 ? std::min<uint64_t>(requests / conns + 16, 4000000) : 200000);
    uint64_t seq = 0;
    std::string body;
    for (;;) {
      SteadyClock::time_point due;
      uint64_t k = 0;
      if (open_loop) {
        k = static_cast<uint64_t>(t) + seq * static_cast<uint64_t>(conns);
        if (k >= open_total) break;
        due = start + std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(k) * 1e9 / rate));
        if (due > hard_deadline) {
          r.not_sent += (open_total - k + conns - 1) / conns;
          break;
        }
        auto now = SteadyClock::now();
        if (now < due) {
          std::this_thread::sleep_until(due);
        } else if (now - due > std::chrono::milliseconds(1)) {
          r.late++;
        }
        if (SteadyClock::now() > hard_deadline) {
          r.not_sent += (open_total - k + conns - 1) / conns;
          break;
        }
      } else {
        if (requests > 0 && issued.fetch_add(1) >= requests) break;
        due = SteadyClock::now();
        if (due >= soft_deadline) break;
      }
      std::string req = make_post(u, path, tag, t, seq++, fixed_body);
      int status = c.roundtrip(req, &body);
      auto done = SteadyClock::now();
      if (status < 0) {
        r.errors++;
        if (r.errors > 1000) break;  // the server is gone: stop this thread
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      r.statuses[status]++;
      r.lat_us.push_back(to_us(done - due));
    }
    r.connects = c.connects();
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < conns; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  auto end = SteadyClock::now();
  int64_t end_epoch_ms = epoch_ms();

  std::vector<uint32_t> all;
  std::map<int, uint64_t> statuses;
  uint64_t errors = 0, late = 0, not_sent = 0, connects = 0;
  for (auto& r : results) {
    all.insert(all.end(), r.lat_us.begin(), r.lat_us.end());
    for (auto& [s, n] : r.statuses) statuses[s] += n;
    errors += r.errors;
    late += r.late;
    not_sent += r.not_sent;
    connects += r.connects;
  }
  double elapsed = std::chrono::duration<double>(end - start).count();
  uint64_t ok = 0, answered = 0;
  json st = json::object();
  for (auto& [s, n] : statuses) {
    st[std::to_string(s)] = n;
    answered += n;
    if (s >= 200 && s < 300) ok += n;
  }
  json j;
  j["mode"] = open_loop ? "open" : "closed";
  j["url"] = a.get("url");
  j["conns"] = conns;
  j["tag"] = tag;
  j["elapsed_s"] = elapsed;
  j["start_ms"] = start_epoch_ms;
  j["end_ms"] = end_epoch_ms;
  j["answered"] = answered;
  j["accepted_2xx"] = ok;
  j["statuses"] = st;
  j["errors"] = errors;
  j["connects"] = connects;
  j["rate_2xx_per_s"] = elapsed > 0 ? static_cast<double>(ok) / elapsed : 0.0;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  j["client_cpu_s"] = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  if (open_loop) {
    j["offered_rate_per_s"] = rate;
    j["planned"] = open_total;
    j["late_over_1ms"] = late;
    j["not_sent"] = not_sent;
    j["latency_from"] = "due time (open loop, includes time spent behind schedule)";
  } else {
    j["latency_from"] = "send time (closed loop)";
  }
  j["latency"] = latency_json(all);
  return j;
}

// ------------------------------------------------------------------ helpers on the API

int get_json(Conn& c, const Url& u, const std::string& target, json* out) {
  std::string body;
  int status = c.roundtrip(make_get(u, target), &body);
  if (status == 200 && out) *out = json::parse(body, nullptr, false);
  return status;
}

json run_drain(const Args& a) {
  Url u = parse_url(a.get("url"));
  double timeout = a.num("timeout", 300);
  int poll_ms = static_cast<int>(a.num("poll-ms", 5));
  Conn c(u);
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  uint64_t polls = 0;
  json j;
  j["drained"] = false;
  while (SteadyClock::now() < deadline) {
    ++polls;
    json p, q;
    int s1 = get_json(c, u, "/operations?state=pending&limit=1", &p);
    int s2 = get_json(c, u, "/operations?state=processing&limit=1", &q);
    if (s1 == 200 && s2 == 200 && p.is_object() && q.is_object() && p["items"].empty() &&
        q["items"].empty()) {
      j["drained"] = true;
      j["drained_ms"] = epoch_ms();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  j["polls"] = polls;
  return j;
}


std::string format_time_ms(int64_t ms) {
  time_t secs = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

json run_ops(const Args& a) {
  Url u = parse_url(a.get("url"));
  if (!a.has("since-ms")) die("ops needs --since-ms");
  int64_t since = static_cast<int64_t>(a.num("since-ms", 0));
  int64_t until = static_cast<int64_t>(a.num("until-ms", 9e15));
  int max_pages = static_cast<int>(a.num("max-pages", 5000));
  Conn c(u);
  std::vector<uint32_t> e2e_us;
  std::map<std::string, uint64_t> states;
  int64_t first_created = INT64_MAX, last_updated = 0;
  uint64_t count = 0;
  std::string cursor;
  int pages = 0;
  for (; pages < max_pages; ++pages) {
    std::string target = "/operations?limit=1000&since=" + format_time_ms(since);
    if (!cursor.empty()) target += "&cursor=" + cursor;
    json page;
    int status = get_json(c, u, target, &page);
    if (status != 200 || !page.is_object()) die("GET " + target + " answered " + std::to_string(status));
    for (const json& op : page["items"]) {
      auto created_at = asyncops::parse_rfc3339(op.value("created_at", ""));
      auto updated_at = asyncops::parse_rfc3339(op.value("updated_at", ""));
      if (!created_at || !updated_at) continue;
      int64_t created = created_at.value(), updated = updated_at.value();
      if (created > until) continue;
      ++count;
      std::string state = op.value("state", "?");
      states[state]++;
      first_created = std::min(first_created, created);
      if (op.value("done", false)) {
        last_updated = std::max(last_updated, updated);
        e2e_us.push_back(static_cast<uint32_t>(std::max<int64_t>(0, updated - created) * 1000));
      }
    }
    if (!page["next"].is_string()) {
      ++pages;
      cursor.clear();
      break;
    }
    cursor = page["next"].get<std::string>();
  }
  json j;
  j["count"] = count;
  j["pages"] = pages;
  j["complete"] = cursor.empty();
  j["states"] = states;
  if (count > 0) {
    j["first_created_ms"] = first_created;
    j["last_updated_ms"] = last_updated;
    double span = static_cast<double>(last_updated - first_created) / 1000.0;
    j["span_s"] = span;
    j["rate_per_s"] = span > 0 ? static_cast<double>(e2e_us.size()) / span : 0.0;
  }
  j["e2e"] = latency_json(e2e_us);
  j["e2e_resolution_ms"] = 1;
  return j;
}

json run_ready(const Args& a) {
  double timeout = a.num("timeout", 30);
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  std::string url = a.get("url");
  std::string url_file = a.get("url-file");
  if (url.empty() && url_file.empty()) die("ready needs --url or --url-file");
  uint64_t polls = 0;
  json j;
  j["ready"] = false;
  while (SteadyClock::now() < deadline) {
    ++polls;
    if (url.empty()) {
      std::string s = read_file(url_file);
      if (s.find('\n') != std::string::npos) url = s.substr(0, s.find('\n'));
    }
    if (!url.empty()) {
      Url u = parse_url(url);
      Conn c(u);
      if (c.connect_now() && get_json(c, u, "/healthz", nullptr) == 200) {
        j["ready"] = true;
        j["ready_ms"] = epoch_ms();
        j["url"] = url;
        break;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  j["polls"] = polls;
  return j;
}

// ------------------------------------------------------------------ report

json load_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return json();
  json j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json() : j;
}

double num_at(const json& j, const json::json_pointer& p, double def = NAN) {
  if (!j.is_object() || !j.contains(p)) return def;
  const json& v = j.at(p);
  return v.is_number() ? v.get<double>() : def;
}

// out[prefix + "p50_ms"], "p99_ms" and "max_ms" from the latency summary at
// `at` in j (NaN, shown as n/a, where a figure is missing).
void put_percentiles(json& out, const std::string& prefix, const json& j, const std::string& at) {
  for (const char* figure : {"p50_ms", "p99_ms", "max_ms"}) {
    out[prefix + figure] = num_at(j, json::json_pointer(at + "/" + figure));
  }
}

std::string fmt(double v, int prec = 1) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", prec, v);
  return buf;
}

std::string ratio_str(double v) { return std::isnan(v) ? "n/a" : fmt(v * 100, 1) + "%"; }

std::string verdict(double v, double target, bool at_least) {
  if (std::isnan(v)) return "not measured";
  bool ok = at_least ? v >= target : v <= target;
  return ok ? "meets" : "MISSES";
}

// Builds the figures of one sync mode from the phase files in DIR/MODE/.
// beast_rate: the Beast ceiling's rate (NaN when not measured).
json mode_figures(const std::string& dir, double ceiling_rate, double beast_rate) {
  using P = json::json_pointer;
  json accept = load_json(dir + "/accept.json");
  json drain = load_json(dir + "/drain.json");
  json accept_ops = load_json(dir + "/accept_ops.json");
  json open = load_json(dir + "/open.json");
  json open_ops = load_json(dir + "/open_ops.json");
  json meta = load_json(dir + "/meta.json");
  json f;
  double accepted = num_at(accept, P("/accepted_2xx"));
  double accept_rate = num_at(accept, P("/rate_2xx_per_s"));
  f["accept"] = {{"rate_per_s", accept_rate},
                 {"ratio_of_ceiling", accept_rate / ceiling_rate},
                 {"conns", num_at(accept, P("/conns"))},
                 {"duration_s", num_at(accept, P("/elapsed_s"))},
                 {"accepted", accepted},
                 {"statuses", accept.value("statuses", json::object())},
                 {"errors", num_at(accept, P("/errors"))}};
  put_percentiles(f["accept"], "", accept, "/latency");
  json intake = load_json(dir + "/intake.json");
  if (intake.is_object()) {  // runs made before the phase existed have none
    double rate = num_at(intake, P("/rate_2xx_per_s"));
    f["intake_no_workers"] = {{"rate_per_s", rate},
                              {"ratio_of_ceiling", rate / ceiling_rate},
                              {"ratio_of_beast_ceiling", rate / beast_rate},
                              {"conns", num_at(intake, P("/conns"))},
                              {"duration_s", num_at(intake, P("/elapsed_s"))},
                              {"statuses", intake.value("statuses", json::object())},
                              {"errors", num_at(intake, P("/errors"))},
                              {"daemon_cpu_us_per_accept",
                               num_at(intake, P("/server_cpu_s")) * 1e6 / num_at(intake, P("/answered"))}};
    put_percentiles(f["intake_no_workers"], "", intake, "/latency");
  }
  double start_ms = num_at(accept, P("/start_ms"));
  double drained_ms = num_at(drain, P("/drained_ms"));
  double e2e_rate = accepted / ((drained_ms - start_ms) / 1000.0);
  f["end_to_end"] = {{"rate_per_s", e2e_rate},
                     {"ratio_of_ceiling", e2e_rate / ceiling_rate},
                     {"operations", accepted},
                     {"first_submit_ms", start_ms},
                     {"all_terminal_seen_ms", drained_ms},
                     {"drained", drain.value("drained", false)},
                     {"store_rate_per_s", num_at(accept_ops, P("/rate_per_s"))},
                     {"store_count", num_at(accept_ops, P("/count"))},
                     {"store_states", accept_ops.value("states", json::object())}};
  auto open_loop = [&](const json& o, const json& ops) {
    double offered = num_at(o, P("/offered_rate_per_s"));
    json r{{"offered_rate_per_s", offered},
                {"offered_ratio_of_ceiling", offered / ceiling_rate},
                {"achieved_rate_per_s", num_at(o, P("/rate_2xx_per_s"))},
                {"achieved_ratio_of_ceiling", num_at(o, P("/rate_2xx_per_s")) / ceiling_rate},
                {"duration_s", num_at(o, P("/elapsed_s"))},
                {"planned", num_at(o, P("/planned"))},
                {"accepted", num_at(o, P("/accepted_2xx"))},
                {"not_sent", num_at(o, P("/not_sent"))},
                {"late_over_1ms", num_at(o, P("/late_over_1ms"))},
                {"e2e_operations", num_at(ops, P("/e2e/samples"))},
                {"e2e_states", ops.value("states", json::object())}};
    put_percentiles(r, "accept_", o, "/latency");
    put_percentiles(r, "e2e_", ops, "/e2e");
    return r;
  };
  f["half_ceiling"] = open_loop(load_json(dir + "/half.json"), load_json(dir + "/half_ops.json"));
  f["fixed_rate"] = open_loop(open, open_ops);
  f["cpu"] = meta.value("cpu", json::object());
  f["memory"] = meta.value("memory", json::object());
  f["store"] = meta.value("store", json::object());
  return f;
}

// The figures of a ceiling server's run (loadgen's JSON for the bare httplib
// or Beast server): its rate, latency and CPU per request.
json ceiling_figures(const json& run) {
  using P = json::json_pointer;
  double answered = num_at(run, P("/answered"));
  return {{"rate_per_s", num_at(run, P("/rate_2xx_per_s"))},
          {"conns", num_at(run, P("/conns"))},
          {"duration_s", num_at(run, P("/elapsed_s"))},
          {"p50_ms", num_at(run, P("/latency/p50_ms"))},
          {"p99_ms", num_at(run, P("/latency/p99_ms"))},
          {"server_cpu_us_per_request", num_at(run, P("/server_cpu_s")) * 1e6 / answered},
          {"client_cpu_us_per_request", num_at(run, P("/client_cpu_s")) * 1e6 / answered}};
}

json run_report(const Args& a) {
  using P = json::json_pointer;
  std::string dir = a.get("dir");
  if (dir.empty()) die("report needs --dir");
  json run = load_json(dir + "/run.json");
  json ceiling = load_json(dir + "/ceiling.json");
  json wrk = load_json(dir + "/ceiling_wrk.json");
  double ceiling_rate = num_at(ceiling, P("/rate_2xx_per_s"));
  json doc;
  doc["run"] = run;
  doc["ceiling"] = ceiling_figures(ceiling);
  doc["ceiling"]["wrk_rate_per_s"] = num_at(wrk, P("/rate_per_s"));
  json beast = load_json(dir + "/beast_ceiling.json");
  if (beast.is_object()) {
    doc["beast_ceiling"] = ceiling_figures(beast);
    doc["beast_ceiling"]["ratio_of_httplib_ceiling"] = num_at(beast, P("/rate_2xx_per_s")) / ceiling_rate;
    doc["beast_ceiling"]["io_threads"] = num_at(beast, P("/io_threads"));
  }
  doc["modes"] = json::object();
  for (const char* mode : {"normal", "full"}) {
    std::ifstream probe(dir + "/" + mode + "/accept.json");
    if (probe) {
      double beast_rate = doc.contains("beast_ceiling") ? num_at(doc, P("/beast_ceiling/rate_per_s")) : NAN;
      doc["modes"][mode] = mode_figures(dir + "/" + mode, ceiling_rate, beast_rate);
    }
  }
  json million = load_json(dir + "/million.json");
  if (million.is_object()) doc["million"] = million;

  // The human table goes to stderr-free stdout; the document to --out.
  std::ostringstream t;
  auto row = [&t](const std::string& name, const std::string& v1, const std::string& v2 = "",
                  const std::string& v3 = "") {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-46s %18s %12s %14s\n", name.c_str(), v1.c_str(), v2.c_str(), v3.c_str());
    t << buf;
  };
  t << "\nasyncops benchmark  " << run.value("date", "") << "  (" << run.value("profile", "") << ")\n";
  t << "machine: " << run.value("nproc", 0) << " cpus, " << run.value("cpu", "") << ", kernel "
    << run.value("kernel", "") << "; load average at start: " << run.value("loadavg_start", "?") << "\n\n";
  row("figure", "value", "of ceiling", "issue target");
  row("ceiling: bare httplib, POST->202 (loadgen)", fmt(ceiling_rate, 0) + " /s", "100.0%");
  row("  ceiling p50 / p99", fmt(num_at(ceiling, P("/latency/p50_ms")), 3) + " / " +
                                 fmt(num_at(ceiling, P("/latency/p99_ms")), 3) + " ms");
  row("  ceiling CPU per request: server / client", fmt(num_at(doc, P("/ceiling/server_cpu_us_per_request")), 1) + " / " +
                                                        fmt(num_at(doc, P("/ceiling/client_cpu_us_per_request")), 1) + " us");
  row("  ceiling measured by wrk (cross-check)", fmt(num_at(wrk, P("/rate_per_s")), 0) + " /s",
      ratio_str(num_at(wrk, P("/rate_per_s")) / ceiling_rate));
  if (doc.contains("beast_ceiling")) {
    const json& b = doc["beast_ceiling"];
    row("ceiling: bare Beast, " + fmt(num_at(b, P("/io_threads")), 0) + " I/O threads (loadgen)",
        fmt(num_at(b, P("/rate_per_s")), 0) + " /s", ratio_str(num_at(b, P("/ratio_of_httplib_ceiling"))));
    row("  Beast ceiling p50 / p99", fmt(num_at(b, P("/p50_ms")), 3) + " / " + fmt(num_at(b, P("/p99_ms")), 3) + " ms");
    row("  Beast ceiling CPU per request: server / client",
        fmt(num_at(b, P("/server_cpu_us_per_request")), 1) + " / " + fmt(num_at(b, P("/client_cpu_us_per_request")), 1) +
            " us");
  }
  for (const char* mode : {"normal", "full"}) {  // in this order, not the object's
    if (!doc["modes"].contains(mode)) continue;
    const json& f = doc["modes"][mode];
    t << "\n--sync " << mode << "\n";
    if (f.contains("intake_no_workers")) {
      const json& in = f["intake_no_workers"];
      double ir = num_at(in, P("/ratio_of_ceiling"));
      row("(2a) intake, no workers, " + fmt(num_at(in, P("/conns")), 0) + " conns",
          fmt(num_at(in, P("/rate_per_s")), 0) + " /s", ratio_str(ir), ">=50% " + verdict(ir, 0.5, true));
      double ib = num_at(in, P("/ratio_of_beast_ceiling"));
      row("     of the Beast ceiling", "", ratio_str(ib), ">=50% " + verdict(ib, 0.5, true));
      row("     p50 / p99; daemon CPU per accept", fmt(num_at(in, P("/p50_ms")), 2) + " / " +
                                                    fmt(num_at(in, P("/p99_ms")), 2) + " ms; " +
                                                    fmt(num_at(in, P("/daemon_cpu_us_per_accept")), 1) + " us");
    }
    double ar = num_at(f, P("/accept/ratio_of_ceiling"));
    row("(2) accept rate, 2 workers, " + fmt(num_at(f, P("/accept/conns")), 0) + " conns", fmt(num_at(f, P("/accept/rate_per_s")), 0) + " /s",
        ratio_str(ar), ">=60% " + verdict(ar, 0.6, true));
    double er = num_at(f, P("/end_to_end/ratio_of_ceiling"));
    row("(3) end-to-end rate (submit -> all terminal)", fmt(num_at(f, P("/end_to_end/rate_per_s")), 0) + " /s",
        ratio_str(er), ">=40% " + verdict(er, 0.4, true));
    row("(4) accept p50 / p99 at saturation", fmt(num_at(f, P("/accept/p50_ms")), 2) + " / " +
                                                  fmt(num_at(f, P("/accept/p99_ms")), 2) + " ms");
    double p99 = num_at(f, P("/half_ceiling/accept_p99_ms"));
    row("(6) open loop at half the ceiling: offered", fmt(num_at(f, P("/half_ceiling/offered_rate_per_s")), 0) + " /s",
        ratio_str(num_at(f, P("/half_ceiling/offered_ratio_of_ceiling"))));
    row("    accepted there", fmt(num_at(f, P("/half_ceiling/achieved_rate_per_s")), 0) + " /s",
        ratio_str(num_at(f, P("/half_ceiling/achieved_ratio_of_ceiling"))));
    row("    accept p50 / p99 there (from due time)", fmt(num_at(f, P("/half_ceiling/accept_p50_ms")), 2) + " / " +
                                                      fmt(p99, 2) + " ms",
        "", "p99<=5ms " + verdict(p99, 5.0, false));
    row("(5) open loop for e2e latency: offered", fmt(num_at(f, P("/fixed_rate/offered_rate_per_s")), 0) + " /s",
        ratio_str(num_at(f, P("/fixed_rate/offered_ratio_of_ceiling"))));
    row("    accepted there", fmt(num_at(f, P("/fixed_rate/achieved_rate_per_s")), 0) + " /s",
        ratio_str(num_at(f, P("/fixed_rate/achieved_ratio_of_ceiling"))));
    row("    accept p50 / p99 there", fmt(num_at(f, P("/fixed_rate/accept_p50_ms")), 2) + " / " +
                                          fmt(num_at(f, P("/fixed_rate/accept_p99_ms")), 2) + " ms");
    row("    e2e p50 / p99 there (updated-created)", fmt(num_at(f, P("/fixed_rate/e2e_p50_ms")), 0) + " / " +
                                                   fmt(num_at(f, P("/fixed_rate/e2e_p99_ms")), 0) + " ms");
    row("(7) peak RSS daemon / worker1 / worker2", fmt(num_at(f, P("/memory/daemon_vmhwm_kib")) / 1024, 1) + " / " +
                                                       fmt(num_at(f, P("/memory/worker1_vmhwm_kib")) / 1024, 1) + " / " +
                                                       fmt(num_at(f, P("/memory/worker2_vmhwm_kib")) / 1024, 1) + " MiB");
    row("    CPU per operation: daemon / workers", fmt(num_at(f, P("/cpu/daemon_us_per_op")), 0) + " / " +
                                                       fmt(num_at(f, P("/cpu/workers_us_per_op")), 0) + " us");
    double bpo = num_at(f, P("/store/bytes_per_op"));
    row("(8) store bytes per operation", fmt(bpo, 0) + " B", fmt(num_at(f, P("/store/operations")), 0) + " ops",
        "<=1024 " + verdict(bpo, 1024, false));
  }
  if (doc.contains("million")) {
    const json& m = doc["million"];
    t << "\n--million (" << m.value("sync", "") << ")\n";
    row("operations in the store", fmt(num_at(m, P("/operations")), 0));
    row("fill rate through HTTP", fmt(num_at(m, P("/fill_rate_per_s")), 0) + " /s",
        ratio_str(num_at(m, P("/fill_rate_per_s")) / ceiling_rate));
    double rss = num_at(m, P("/daemon_vmhwm_kib")) / 1024;
    row("daemon peak RSS while filling", fmt(rss, 1) + " MiB", "", "<=100MiB " + verdict(rss, 100, false));
    double rss2 = num_at(m, P("/restarted_vmhwm_kib")) / 1024;
    row("daemon peak RSS after restart + probe load", fmt(rss2, 1) + " MiB", "", "<=100MiB " + verdict(rss2, 100, false));
    double bpo = num_at(m, P("/bytes_per_op"));
    row("store bytes per operation", fmt(bpo, 0) + " B", "", "<=1024 " + verdict(bpo, 1024, false));
    double peak_rss = 0, backlog_at_peak = NAN, peak_wal = NAN;
    if (m.contains("rss_samples")) {
      for (const json& x : m["rss_samples"]) {
        if (x.contains("wal_bytes") && x["wal_bytes"].is_number()) {
          double w = x["wal_bytes"].get<double>();
          if (std::isnan(peak_wal) || w > peak_wal) peak_wal = w;
        }
        double r = x.value("daemon_rss_kib", 0.0);
        if (r > peak_rss) {
          peak_rss = r;
          backlog_at_peak = x["not_terminal"].is_number() ? x["not_terminal"].get<double>() : NAN;
        }
      }
      row("  largest RSS sample / not-terminal ops then", fmt(peak_rss / 1024, 1) + " MiB", fmt(backlog_at_peak, 0) + " ops");
      row("  largest WAL sample while filling", fmt(peak_wal / 1048576, 1) + " MiB");
    }
    double rr = num_at(m, P("/restart_to_ready_ms"));
    row("restart: exec -> /healthz 200", fmt(rr, 0) + " ms", "", "<2000ms " + verdict(rr, 1999.999, false));
  }
  doc["table"] = t.str();
  std::cout << t.str() << std::flush;
  return doc;
}

void usage() {
  std::cerr << "usage: asyncops-bench-loadgen closed|open|drain|ops|ready|report --OPTION VALUE ...\n"
               "  (see the comment at the top of bench/loadgen.cpp, or bench/README.md)\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage();
    return 2;
  }
  std::string cmd = argv[1];
  Args a = parse_args(argc, argv, 2);
  json j;
  if (cmd == "closed") {
    j = run_load(a, false);
  } else if (cmd == "open") {
    j = run_load(a, true);
  } else if (cmd == "drain") {
    j = run_drain(a);
  } else if (cmd == "ops") {
    j = run_ops(a);
  } else if (cmd == "ready") {
    j = run_ready(a);
  } else if (cmd == "report") {
    j = run_report(a);
    std::string out = a.get("out");
    if (!out.empty()) {
      j.erase("table");
      emit(a, j);
    }
    return 0;
  } else {
    usage();
    return 2;
  }
  emit(a, j);
  if (cmd == "drain" && !j.value("drained", false)) return 1;
  if (cmd == "ready" && !j.value("ready", false)) return 1;
  return 0;
}
