#include "store/pid_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace asyncops {

PidLock::~PidLock() {
  if (m_fd >= 0) {
    if (!m_keep) ::unlink(m_path.c_str());
    ::close(m_fd);
  }
}

Status PidLock::acquire(const std::string& path, bool record_pid) {
  m_path = path;
  struct stat before {};
  m_found_stale = ::stat(path.c_str(), &before) == 0;
  m_fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (m_fd < 0) return Error{"cannot open " + path + ": " + std::strerror(errno)};
  if (::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(m_fd);
    m_fd = -1;
    m_held_elsewhere = true;
    return Error{"another asyncopsd is running on this data dir (" + path + " is locked)"};
  }
  if (record_pid) {
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(m_fd, 0) != 0 || ::write(m_fd, pid.data(), pid.size()) < 0) {
      return Error{"cannot write " + path};
    }
  }
  return Status::success();
}

}  // namespace asyncops
