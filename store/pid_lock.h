#pragma once
// PidLock: the exclusive flock on DATA_DIR/asyncopsd.pid that keeps one
// writer per store. The daemon holds it for its whole life; `asyncops store
// vacuum` takes it to prove the daemon is down and to keep one from
// starting until it is done.
//
// The daemon removes the file at a clean stop, so finding it at start
// means the last daemon did not stop cleanly (killed, crashed, or it kept
// the file: see keep_file).
#include <string>

#include "shared/result.h"

namespace asyncops {

class PidLock {
 public:
  PidLock() = default;
  PidLock(const PidLock&) = delete;
  PidLock& operator=(const PidLock&) = delete;
  // Releases the lock; removes the file unless keep_file() was called.
  ~PidLock();

  // Opens (creating) path and locks it without waiting; with record_pid,
  // writes this process's pid into it. Fails when another process holds
  // the lock (held_elsewhere() is then true) or the file cannot be opened
  // or written.
  Status acquire(const std::string& path, bool record_pid = true);
  // acquire() failed because another process holds the lock.
  bool held_elsewhere() const { return m_held_elsewhere; }
  // The file was there before acquire(): the last stop was not clean (or a
  // daemon is running).
  bool found_stale() const { return m_found_stale; }
  // Leaves the file at exit, so that the next start checks the store again.
  void keep_file() { m_keep = true; }

 private:
  std::string m_path;
  int m_fd = -1;
  bool m_found_stale = false;
  bool m_held_elsewhere = false;
  bool m_keep = false;
};

}  // namespace asyncops
