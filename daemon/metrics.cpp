#include "daemon/metrics.h"

#include <cstdio>

namespace asyncops {

std::string render_metric(const char* name, const char* type, const char* help, double value) {
  return std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + " " +
         std::to_string(static_cast<int64_t>(value)) + "\n";
}

namespace {
// asyncops_messages_refused_total{kind,reason}.
std::string render_refused(const std::array<std::array<uint64_t, k_refusal_count>, 2>& refused) {
  const char* const kinds[2] = {k_kind_event, k_kind_heartbeat};
  std::string m =
      "# HELP asyncops_messages_refused_total Messages on the events socket refused when decoded "
      "(malformed, or over a protocol limit), by kind and reason.\n"
      "# TYPE asyncops_messages_refused_total counter\n";
  for (int k = 0; k < 2; ++k) {
    for (int r = 0; r < k_refusal_count; ++r) {
      m += std::string("asyncops_messages_refused_total{kind=\"") + kinds[k] + "\",reason=\"" +
           to_string(static_cast<Refusal>(r)) + "\"} " + std::to_string(refused[k][r]) + "\n";
    }
  }
  return m;
}

// A metric with one sample and no labels; the value is any counter's type.
struct PlainMetric {
  template <class Value>
  PlainMetric(const char* n, const char* t, const char* h, Value v)
      : name(n), type(t), help(h), value(static_cast<double>(v)) {}
  const char* name;
  const char* type;
  const char* help;
  double value;
};
}  // namespace

std::string render(const DaemonCounters& c) {
  const PlainMetric plain[] = {
      {"asyncops_operations_accepted_total", "counter", "Operations accepted (202).", c.accepted},
      {"asyncops_backlog", "gauge", "Operations not yet terminal.", c.backlog},
      {"asyncops_dispatch_waiting", "gauge", "Commands waiting for a worker or a redelivery.",
       c.dispatch_waiting},
      {"asyncops_in_flight", "gauge", "Commands with a worker, under lease.", c.in_flight},
      {"asyncops_commands_sent_total", "counter", "Commands handed to workers.", c.commands_sent},
      {"asyncops_redeliveries_total", "counter", "Commands sent again after a lease ran out.",
       c.redeliveries},
      {"asyncops_claims_granted_total", "counter",
       "Claimed commands a worker may start (the attempt held its lease).", c.claims_granted},
      {"asyncops_claims_refused_total", "counter",
       "Claimed commands refused: that attempt had lost its lease.", c.claims_refused},
      {"asyncops_worker_connections", "gauge",
       "Worker connections with credit on the commands sockets.", c.worker_connections},
      {"asyncops_worker_connections_lost_total", "counter",
       "Worker connections forgotten: gone or silent.", c.worker_connections_lost},
      {"asyncops_handshakes_failed_total", "counter",
       "Worker handshakes refused on the commands sockets (e.g. a protocol-1 worker).",
       c.handshakes_failed},
      {"asyncops_commands_channel_refused_total", "counter",
       "Undecodable messages on the commands sockets.", c.commands_channel_refused},
      {"asyncops_events_late_total", "counter",
       "Outcomes from an attempt that had lost its lease (logged, in the history).", c.events_late},
      {"asyncops_events_applied_total", "counter", "Worker events that changed an operation.",
       c.events_applied},
      {"asyncops_events_unknown_total", "counter", "Worker events for no known operation.",
       c.events_unknown},
      {"asyncops_events_rejected_total", "counter",
       "Worker events refused: not allowed for their operation.", c.events_rejected},
      {"asyncops_events_ignored_total", "counter",
       "Worker events that changed nothing (late or duplicate).", c.events_ignored},
      {"asyncops_bad_frames_total", "counter", "Undecodable messages on the events socket.",
       c.bad_frames},
      {"asyncops_store_commits_total", "counter", "Store transactions (group commits).", c.commits},
      {"asyncops_store_commit_failures_total", "counter", "Store transactions that failed.",
       c.commit_failures},
      {"asyncops_workers_live", "gauge", "Workers with a recent heartbeat.", c.workers_live},
      {"asyncops_workers_evicted_total", "counter",
       "Workers forgotten to keep the registry bounded.", c.workers_evicted},
  };
  std::string m;
  for (const PlainMetric& p : plain) m += render_metric(p.name, p.type, p.help, p.value);
  m += render_refused(c.refused);
  if (c.curve_rejected) {
    m += render_metric("asyncops_curve_rejected_total", "counter", "Worker connections refused by CURVE/ZAP.",
                       *c.curve_rejected);
  }
  m += render_metric("asyncops_operations_pruned_total", "counter",
                     "Operations forgotten after the retention period.", c.pruned);
  return m;
}

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
