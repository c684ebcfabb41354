#pragma once
// Per-principal rate limit (issue 7): a token bucket per principal, refilled
// at rate per second up to burst. The buckets live in 32 shards, each with its
// own small mutex, so principals rarely contend and there is no global lock.
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "shared/mutex.h"
#include "shared/result.h"

namespace asyncops {

class RateLimiter {
 public:
  // rate <= 0: unlimited. burst 0: the same as rate (at least 1).
  explicit RateLimiter(double rate, double burst = 0);
  // Takes one token for principal: 0 if admitted, else whole seconds until
  // a token is due (for Retry-After, at least 1).
  int take(const std::string& principal);
  // The same at a given time (ns on any monotonic clock), for tests.
  int take_at(const std::string& principal, int64_t now_ns);
  bool enabled() const { return m_rate > 0; }

 private:
  struct Bucket {
    double tokens = 0;
    int64_t last_ns = 0;
  };
  struct Shard {
    Mutex mutex;
    std::unordered_map<std::string, Bucket> buckets GUARDED_BY(mutex);
  };
  double m_rate, m_burst;
  std::array<Shard, 32> m_shards;
};

// Parses "N/s", "N/m" or a bare N (per second) into a rate per second; an
// error naming the text if malformed, negative or above 1e9.
Result<double> parse_rate(const std::string& text);

}  // namespace asyncops
