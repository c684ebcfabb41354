#pragma once
// Structured logging to stderr: "text" for people, "json" for machines (one
// object per line). Thread-safe; each line is written with one write(2).
#include <string>

#include "shared/result.h"
#include <utility>
#include <vector>

namespace asyncops {

// Names the calling thread (at most 15 characters show), so that top -H,
// perf and /proc/PID/task/*/comm tell the daemon's threads apart.
void name_this_thread(const char* name);

enum class LogLevel { debug, info, warn, error };
enum class LogFormat { text, json };

void log_configure(const std::string& program, LogFormat format, LogLevel min_level);
// The level named s (debug, info, warn, error); an error naming s otherwise.
Result<LogLevel> parse_log_level(const std::string& s);

using LogFields = std::vector<std::pair<std::string, std::string>>;
void log(LogLevel level, const std::string& message, const LogFields& fields = {});

inline void log_info(const std::string& m, const LogFields& f = {}) { log(LogLevel::info, m, f); }
inline void log_warn(const std::string& m, const LogFields& f = {}) { log(LogLevel::warn, m, f); }
inline void log_error(const std::string& m, const LogFields& f = {}) { log(LogLevel::error, m, f); }
inline void log_debug(const std::string& m, const LogFields& f = {}) { log(LogLevel::debug, m, f); }

}  // namespace asyncops
