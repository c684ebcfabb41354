#include "daemon/metrics.h"

#include <cstdio>

namespace asyncops {

void Histogram::observe(double ms) {
  size_t i = 0;
  while (i < k_bounds_ms.size() && ms > k_bounds_ms[i]) ++i;
  m_buckets[i].fetch_add(1, std::memory_order_relaxed);
  m_sum_us.fetch_add(static_cast<uint64_t>(ms < 0 ? 0 : ms * 1000), std::memory_order_relaxed);
  m_count.fetch_add(1, std::memory_order_relaxed);
}

std::string Histogram::render(const std::string& name, const std::string& help) const {
  std::string out = "# HELP " + name + " " + help + "\n# TYPE " + name + " histogram\n";
  uint64_t cumulative = 0;
  char line[160];
  for (size_t i = 0; i <= k_bounds_ms.size(); ++i) {
    cumulative += m_buckets[i].load(std::memory_order_relaxed);
    if (i < k_bounds_ms.size()) {
      std::snprintf(line, sizeof line, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), k_bounds_ms[i] / 1000.0,
                    static_cast<unsigned long long>(cumulative));
    } else {
      std::snprintf(line, sizeof line, "%s_bucket{le=\"+Inf\"} %llu\n", name.c_str(),
                    static_cast<unsigned long long>(cumulative));
    }
    out += line;
  }
  std::snprintf(line, sizeof line, "%s_sum %.6f\n%s_count %llu\n", name.c_str(),
                m_sum_us.load(std::memory_order_relaxed) / 1e6, name.c_str(),
                static_cast<unsigned long long>(m_count.load(std::memory_order_relaxed)));
  out += line;
  return out;
}

Metrics::Metrics(const std::vector<std::string>& commands) {
  for (const auto& c : commands) m_commands[c];
}

void Metrics::accepted(const std::string& command, double latency_ms) {
  auto it = m_commands.find(command);
  if (it != m_commands.end()) it->second.accepted.fetch_add(1, std::memory_order_relaxed);
  m_accept.observe(latency_ms);
}

void Metrics::finished(const std::string& command, const std::string& state, double end_to_end_ms) {
  auto it = m_commands.find(command);
  if (it != m_commands.end()) {
    PerCommand& p = it->second;
    if (state == "completed") p.completed.fetch_add(1, std::memory_order_relaxed);
    else if (state == "rejected") p.rejected.fetch_add(1, std::memory_order_relaxed);
    else if (state == "failed") p.failed.fetch_add(1, std::memory_order_relaxed);
    else if (state == "canceled") p.canceled.fetch_add(1, std::memory_order_relaxed);
  }
  m_end_to_end.observe(end_to_end_ms);
}

std::string Metrics::render() const {
  std::string out;
  struct Family {
    const char* name;
    const char* help;
    std::atomic<uint64_t> PerCommand::*field;
  };
  const Family families[] = {
      {"asyncops_commands_accepted_total", "Operations accepted (202), by command.", &PerCommand::accepted},
      {"asyncops_commands_completed_total", "Operations completed, by command.", &PerCommand::completed},
      {"asyncops_commands_rejected_total", "Operations rejected, by command.", &PerCommand::rejected},
      {"asyncops_commands_failed_total", "Operations failed, by command.", &PerCommand::failed},
      {"asyncops_commands_canceled_total", "Operations canceled, by command.", &PerCommand::canceled},
  };
  for (const Family& f : families) {
    out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " counter\n";
    for (const auto& [command, p] : m_commands) {
      out += std::string(f.name) + "{command=\"" + command + "\"} " +
             std::to_string((p.*(f.field)).load(std::memory_order_relaxed)) + "\n";
    }
  }
  out += m_accept.render("asyncops_accept_latency_seconds",
                         "Time from a command's arrival to its 202 (after its commit).");
  out += m_end_to_end.render("asyncops_end_to_end_latency_seconds",
                             "Time from acceptance to the terminal state (updated_at - created_at).");
  return out;
}

}  // namespace asyncops
