#include "shared/log.h"

#include <pthread.h>

#include <unistd.h>

#include <atomic>

#include <nlohmann/json.hpp>

#include "shared/clock.h"
#include "shared/mutex.h"

namespace asyncops {

void name_this_thread(const char* name) { pthread_setname_np(pthread_self(), name); }
namespace {

struct LogConfig {
  Mutex mutex;
  std::string program GUARDED_BY(mutex) = "asyncops";
  std::atomic<LogFormat> format{LogFormat::text};
  std::atomic<LogLevel> min_level{LogLevel::info};
};

LogConfig& config() {
  static LogConfig c;
  return c;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "info";
}

}  // namespace

void log_configure(const std::string& program, LogFormat format, LogLevel min_level) {
  LogConfig& c = config();
  {
    MutexLock lock(&c.mutex);
    c.program = program;
  }
  c.format = format;
  c.min_level = min_level;
}

Result<LogLevel> parse_log_level(const std::string& s) {
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    if (s == level_name(l)) return l;
  }
  return Error{"'" + s + "' is not a log level (debug, info, warn or error)"};
}

void log(LogLevel level, const std::string& message, const LogFields& fields) {
  LogConfig& c = config();
  if (level < c.min_level.load()) return;
  std::string program;
  {
    MutexLock lock(&c.mutex);
    program = c.program;
  }
  std::string line;
  std::string ts = format_rfc3339_ms(now_ms());
  if (c.format.load() == LogFormat::json) {
    nlohmann::json j = {{"time", ts}, {"level", level_name(level)}, {"program", program},
                        {"msg", message}};
    for (const auto& [k, v] : fields) j[k] = v;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = ts + " " + program + " " + level_name(level) + ": " + message;
    for (const auto& [k, v] : fields) line += " " + k + "=" + v;
  }
  line.push_back('\n');
  ssize_t n = ::write(STDERR_FILENO, line.data(), line.size());
  (void)n;
}

}  // namespace asyncops
