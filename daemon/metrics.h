#pragma once
// Metrics: counters and latency histograms for GET /metrics, in the
// Prometheus text format, and the rendering of every other metric the
// daemon serves. Every update is a relaxed atomic add; the set of
// commands is fixed at start (from the route table), so the hot path takes
// no lock.
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/envelope.h"

namespace asyncops {

// One metric without labels: its HELP and TYPE lines and its value, as a
// whole number. type is "counter" or "gauge".
std::string render_metric(const char* name, const char* type, const char* help, double value);

// The daemon's own counters and gauges, read from its parts when /metrics
// is served (daemon/daemon.cpp takes it).
struct DaemonCounters {
  uint64_t accepted = 0;  // operations accepted (202)
  int64_t backlog = 0;    // operations not yet terminal
  uint64_t dispatch_waiting = 0, in_flight = 0, commands_sent = 0, redeliveries = 0;
  // The commands channel (docs/protocol.md §4a): claims, credit connections.
  uint64_t claims_granted = 0, claims_refused = 0, worker_connections = 0, worker_connections_lost = 0;
  uint64_t handshakes_failed = 0, commands_channel_refused = 0;
  uint64_t events_late = 0;  // outcomes from an attempt that had lost its lease
  uint64_t events_applied = 0, events_unknown = 0, events_rejected = 0, events_ignored = 0;
  uint64_t bad_frames = 0;  // undecodable messages on the events socket
  uint64_t commits = 0, commit_failures = 0;
  uint64_t workers_live = 0, workers_evicted = 0;
  // Messages refused when decoded, by kind (0 event, 1 heartbeat) and Refusal.
  std::array<std::array<uint64_t, k_refusal_count>, 2> refused{};
  std::optional<uint64_t> curve_rejected;  // set only when workers use CURVE
  uint64_t pruned = 0;
};
std::string render(const DaemonCounters& c);

class Histogram {
 public:
  // Upper bounds in milliseconds; +Inf is implied.
  static constexpr std::array<double, 14> k_bounds_ms = {0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
  void observe(double ms);
  // name_bucket{le="..."} lines, then name_sum (seconds) and name_count.
  std::string render(const std::string& name, const std::string& help) const;

 private:
  std::array<std::atomic<uint64_t>, k_bounds_ms.size() + 1> m_buckets{};
  std::atomic<uint64_t> m_sum_us{0};
  std::atomic<uint64_t> m_count{0};
};

class Metrics {
 public:
  explicit Metrics(const std::vector<std::string>& commands);

  void accepted(const std::string& command, double latency_ms);
  // An operation reached a terminal state after end_to_end_ms.
  void finished(const std::string& command, const std::string& state, double end_to_end_ms);

  std::string render() const;

 private:
  struct PerCommand {
    std::atomic<uint64_t> accepted{0}, completed{0}, rejected{0}, failed{0}, canceled{0};
  };
  std::map<std::string, PerCommand> m_commands;  // fixed after construction
  Histogram m_accept;
  Histogram m_end_to_end;
};

}  // namespace asyncops
