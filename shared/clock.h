#pragma once
#include <cstdint>
#include <string>

#include "shared/result.h"

namespace asyncops {

// Milliseconds since the Unix epoch, from the system clock.
int64_t now_ms();

// Nanoseconds on the steady clock (for intervals: it never steps back).
int64_t steady_ns();

// RFC 3339 in UTC with milliseconds, e.g. "2026-11-27T06:55:00.123Z".
std::string format_rfc3339_ms(int64_t ms_since_epoch);

// Parses what format_rfc3339_ms writes, plus an offset of "Z" or "+hh:mm" and
// any number of fraction digits, as ms since the epoch; an error naming the
// text on anything else.
Result<int64_t> parse_rfc3339(const std::string& s);

}  // namespace asyncops
