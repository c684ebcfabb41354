#include "daemon/auth.h"

#include <strings.h>
#include <sys/stat.h>

#include "shared/base64url.h"
#include "shared/clock.h"
#include "shared/log.h"

namespace asyncops {
namespace {

int64_t steady_ms() { return steady_ns() / 1000000; }

}  // namespace

TokenStore::TokenStore(std::string path) : m_path(std::move(path)) {
  std::atomic_store(&m_snapshot, std::shared_ptr<const Snapshot>(std::make_shared<Snapshot>()));
  reload(true);
  m_last_check_ms = steady_ms();
}

std::shared_ptr<const TokenStore::Snapshot> TokenStore::snapshot() const {
  return std::atomic_load(&m_snapshot);
}

bool TokenStore::reload(bool force) {
  if (m_path.empty()) return true;
  struct stat st {};
  int64_t mtime = -1, size = -1, inode = -1;
  if (::stat(m_path.c_str(), &st) == 0) {
    mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    size = st.st_size;
    inode = static_cast<int64_t>(st.st_ino);
  }
  auto cur = snapshot();
  if (!force && mtime == cur->mtime_ns && size == cur->size && inode == cur->inode) return true;
  auto entries = read_tokens_file(m_path);
  if (!entries) {
    log_error("tokens file not reloaded; keeping the previous tokens", {{"error", entries.error()}});
    return false;
  }
  auto next = std::make_shared<Snapshot>();
  next->mtime_ns = mtime;
  next->size = size;
  next->inode = inode;
  for (auto& e : entries.value()) next->by_hash[e.hash] = e;
  if (cur->mtime_ns != -1 || !next->by_hash.empty()) {
    log_info("tokens loaded", {{"file", m_path}, {"count", std::to_string(next->by_hash.size())}});
  }
  std::atomic_store(&m_snapshot, std::shared_ptr<const Snapshot>(std::move(next)));
  return true;
}

void TokenStore::maybe_reload() {
  int64_t now = steady_ms();
  int64_t last = m_last_check_ms.load(std::memory_order_relaxed);
  if (now - last < 1000) return;
  // One request per second does the stat; the others go on with the snapshot.
  if (!m_last_check_ms.compare_exchange_strong(last, now)) return;
  reload(false);
}

bool TokenStore::recheck_on_miss() {
  if (m_path.empty()) return false;
  auto before = snapshot();
  reload(false);
  return snapshot() != before;
}

bool TokenStore::configured() {
  maybe_reload();
  return !snapshot()->by_hash.empty();
}

AuthDecision TokenStore::check(const std::string& authorization) {
  maybe_reload();
  auto snap = snapshot();
  AuthDecision d;
  if (snap->by_hash.empty()) return d;  // open
  const std::string prefix = "Bearer ";
  if (authorization.empty()) {
    d.kind = AuthDecision::missing;
    return d;
  }
  if (authorization.size() <= prefix.size() || strncasecmp(authorization.c_str(), prefix.c_str(), prefix.size()) != 0) {
    d.kind = AuthDecision::invalid;
    return d;
  }
  std::string token = authorization.substr(prefix.size());
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.pop_back();
  std::string hash = sha256_hex(token);
  auto it = snap->by_hash.find(hash);
  if (it == snap->by_hash.end() && recheck_on_miss()) {
    // `token add` may have just written it: the file changed since the
    // snapshot, so look again rather than refuse for up to a second.
    snap = snapshot();
    it = snap->by_hash.find(hash);
  }
  if (it == snap->by_hash.end()) {
    d.kind = AuthDecision::invalid;
    return d;
  }
  d.kind = AuthDecision::ok;
  d.principal = it->second.principal;
  d.role = it->second.role;
  return d;
}

}  // namespace asyncops
