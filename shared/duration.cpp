#include "shared/duration.h"

#include <cctype>
#include <limits>

namespace asyncops {

Result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  const Error malformed{"'" + text + "' is not a duration like 250ms, 30s, 5m, 24h or 7d"};
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0) return malformed;
  if (i > 12) return Error{"'" + text + "' is too long a duration (at most 12 digits)"};
  long long n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  long long unit_ms;
  if (unit == "ms") unit_ms = 1;
  else if (unit == "s" || unit.empty()) unit_ms = 1000;
  else if (unit == "m") unit_ms = 60 * 1000;
  else if (unit == "h") unit_ms = 3600 * 1000;
  else if (unit == "d") unit_ms = 86400 * 1000;
  else return malformed;
  // Twelve digits of days do not fit in 64-bit milliseconds.
  if (n > std::numeric_limits<long long>::max() / unit_ms) {
    return Error{"'" + text + "' is too long a duration (more than 64-bit milliseconds hold)"};
  }
  return std::chrono::milliseconds(n * unit_ms);
}

std::string format_duration(std::chrono::milliseconds d) {
  long long ms = d.count();
  if (ms != 0 && ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace asyncops
