#pragma once
// How a store backend tells its owner that the store is damaged, when it
// meets the damage outside any call the owner made (for SQLite, through
// its process-wide error log: store/sqlite_health.h).
#include <string>

namespace asyncops {

class CorruptionListener {
 public:
  // code: the backend's own error code, for the log. Called on the thread
  // that met the damage, possibly with the backend's locks held: it must
  // not call the store. Must be thread-safe.
  virtual void corrupt(int code, const std::string& detail) = 0;

 protected:
  ~CorruptionListener() = default;
};

}  // namespace asyncops
