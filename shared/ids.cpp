#include "shared/ids.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

#include "shared/mutex.h"

namespace asyncops {
namespace {

struct V7State {
  Mutex mutex;
  uint64_t last_ms GUARDED_BY(mutex) = 0;
  uint16_t counter GUARDED_BY(mutex) = 0;  // 12 bits used
  std::mt19937_64 rng GUARDED_BY(mutex){std::random_device{}()};
};

V7State& v7_state() {
  static V7State s;
  return s;
}

const char k_hex[] = "0123456789abcdef";

}  // namespace

std::string new_uuid_v7() {
  uint64_t ms;
  uint16_t counter;
  uint64_t rand_hi, rand_lo;
  {
    V7State& s = v7_state();
    MutexLock lock(&s.mutex);
    ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
    if (ms <= s.last_ms) {
      // Same millisecond (or the clock stepped back): keep order with the counter,
      // and borrow the next millisecond when the counter runs out.
      ms = s.last_ms;
      if (++s.counter > 0x0fff) {
        s.counter = 0;
        ms = ++s.last_ms;
      }
    } else {
      s.last_ms = ms;
      s.counter = static_cast<uint16_t>(s.rng() & 0x01ff);  // leave room to count up
    }
    counter = s.counter;
    rand_hi = s.rng();
    rand_lo = s.rng();
  }
  uint8_t b[16];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((counter >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(counter & 0xff);
  b[8] = static_cast<uint8_t>(0x80 | (rand_hi & 0x3f));
  for (int i = 9; i < 16; ++i) b[i] = static_cast<uint8_t>(rand_lo >> (8 * (i - 9)));
  (void)rand_hi;

  // Into a fixed buffer, then one string: 36 push_backs each checked the
  // capacity, most of this function's work (two ids per accept).
  char text[36];
  char* p = text;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
    *p++ = k_hex[b[i] >> 4];
    *p++ = k_hex[b[i] & 0x0f];
  }
  return std::string(text, sizeof text);
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace asyncops
