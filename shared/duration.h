#pragma once
#include <chrono>
#include <string>

#include "shared/result.h"

namespace asyncops {

// Parses "250ms", "30s", "10m", "24h", "7d" (a whole number and a unit; a
// bare number is seconds). An error naming the text on anything else, and
// on a duration too long for 64-bit milliseconds.
Result<std::chrono::milliseconds> parse_duration(const std::string& text);

// The shortest exact form: "7d", "30s", "250ms".
std::string format_duration(std::chrono::milliseconds d);

}  // namespace asyncops
