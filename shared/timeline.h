#pragma once
// Per-operation timeline, for bench/latency_breakdown.sh: with the
// environment variable ASYNCOPS_TIMELINE=1, asyncopsd and asyncops-worker
// write one line to stderr at each step an operation passes on its way
// (accepted, committed, sent, claimed, granted, processing, outcome, ...):
//
//   timeline <microseconds, CLOCK_MONOTONIC> <step> <request id>
//
// CLOCK_MONOTONIC is one clock for every process on a host, so the steps of
// the daemon and of its workers line up. Off (the default) it costs one
// test of a static flag. Not for production: a line per step, unbuffered.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace asyncops {

inline bool timeline_on() {
  static const bool on = [] {
    const char* v = std::getenv("ASYNCOPS_TIMELINE");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

// Now, in the timeline's microseconds (0 when the timeline is off).
inline long long timeline_now_us() {
  if (!timeline_on()) return 0;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000000LL + ts.tv_nsec / 1000;
}

// A step that happened at us (timeline_now_us()), marked once its request
// id is known.
inline void timeline_mark_at(const char* step, const std::string& request_id, long long us) {
  if (!timeline_on()) return;
  std::fprintf(stderr, "timeline %lld %s %.64s\n", us, step, request_id.c_str());
}

inline void timeline_mark(const char* step, const std::string& request_id) {
  if (!timeline_on()) return;
  timeline_mark_at(step, request_id, timeline_now_us());
}

}  // namespace asyncops
