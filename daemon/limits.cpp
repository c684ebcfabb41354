#include "daemon/limits.h"

#include <cmath>
#include <functional>

#include "shared/clock.h"

namespace asyncops {

RateLimiter::RateLimiter(double rate, double burst)
    : m_rate(rate), m_burst(burst > 0 ? burst : std::max(1.0, rate)) {}

int RateLimiter::take(const std::string& principal) {
  if (m_rate <= 0) return 0;
  return take_at(principal, steady_ns());
}

int RateLimiter::take_at(const std::string& principal, int64_t now_ns) {
  if (m_rate <= 0) return 0;
  Shard& shard = m_shards[std::hash<std::string>{}(principal) % m_shards.size()];
  MutexLock lock(&shard.mutex);
  auto [it, fresh] = shard.buckets.try_emplace(principal);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = m_burst;
  } else if (now_ns > b.last_ns) {
    b.tokens = std::min(m_burst, b.tokens + (now_ns - b.last_ns) * 1e-9 * m_rate);
  }
  b.last_ns = std::max(b.last_ns, now_ns);
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return 0;
  }
  double wait_s = (1.0 - b.tokens) / m_rate;
  return std::max(1, static_cast<int>(std::ceil(wait_s)));
}

Result<double> parse_rate(const std::string& text) {
  const Error malformed{"'" + text + "' is not a rate like 100/s or 60/m"};
  std::string t = text;
  double unit = 1;
  if (t.size() > 2 && t.compare(t.size() - 2, 2, "/s") == 0) {
    t.resize(t.size() - 2);
  } else if (t.size() > 2 && t.compare(t.size() - 2, 2, "/m") == 0) {
    t.resize(t.size() - 2);
    unit = 60;
  }
  if (t.empty()) return malformed;
  try {
    size_t used = 0;
    double v = std::stod(t, &used);
    if (used != t.size()) return malformed;
    if (!(v >= 0) || v > 1e9) return Error{"'" + text + "' is not a rate from 0 to 1e9"};
    return v / unit;
  } catch (const std::exception&) {
    return malformed;
  }
}

}  // namespace asyncops
