#include "store/store.h"

#include <stdexcept>

namespace asyncops {

Result<SyncMode> parse_sync_mode(const std::string& s) {
  if (s == "normal") return SyncMode::normal;
  if (s == "full") return SyncMode::full;
  return Error{"expected normal or full, not '" + s + "'"};
}

ReaderPool::Lease ReaderPool::acquire() {
  {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_released.wait(lock, [&] { return !m_idle.empty() || m_open < m_max_open; });
    if (!m_idle.empty()) {
      auto r = std::move(m_idle.back());
      m_idle.pop_back();
      return Lease(this, std::move(r));
    }
    ++m_open;  // reserve a slot, then open outside the lock
  }
  auto r = m_open_reader();
  if (!r) {
    std::lock_guard<std::mutex> lock(m_mutex);
    --m_open;
    m_released.notify_one();
    throw std::runtime_error(r.error());
  }
  return Lease(this, std::move(r.value()));
}

void ReaderPool::release(std::unique_ptr<StoreReader> r) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_idle.push_back(std::move(r));
  }
  m_released.notify_one();
}

}  // namespace asyncops
