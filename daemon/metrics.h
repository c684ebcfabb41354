#pragma once
// Metrics: counters and latency histograms for GET /metrics, in the
// Prometheus text format. Every update is a relaxed atomic add; the set of
// commands is fixed at start (from the route table), so the hot path takes
// no lock.
#include <array>
#include <atomic>
#include <map>
#include <string>
#include <vector>

namespace asyncops {

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
