#pragma once
// API tokens (issue 7). A tokens file maps bearer tokens to a principal and a
// role. Only a SHA-256 of each token is stored, one per line:
//
//   sha256:<64 hex> <principal> <role>
//
// Blank lines and lines starting with '#' are ignored. The daemon reloads the
// file when its mtime, size or inode changes, checking at most once a second
// on the request path, and at once when a token is not found, so that a
// token works as soon as `asyncops token add` returns. A miss costs one
// stat(2), about as much as the SHA-256 it follows; the file is read again only
// when it changed, which a client cannot cause, so a flood of bad tokens stays
// cheap. (A rate limit on these re-checks lost a token added within its
// window: CI added five tokens back to back and one got 401.) The hot path
// reads an immutable snapshot (atomic shared_ptr) and takes no lock.
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "shared/result.h"

namespace asyncops {

enum class Role { submitter, reader, admin };
const char* to_string(Role r);
std::optional<Role> parse_role(const std::string& s);

struct TokenEntry {
  std::string hash;  // lower-case hex SHA-256 of the token
  std::string principal;
  Role role = Role::reader;
};

// Lower-case hex SHA-256 (OpenSSL EVP).
std::string sha256_hex(const std::string& data);
// A new token: "aot_" + base64url of 32 random bytes (RAND_bytes).
std::string new_token();
// Principal names: 1..64 of [A-Za-z0-9._@-].
bool valid_principal(const std::string& name);

Result<std::vector<TokenEntry>> parse_tokens(const std::string& text);
std::string format_tokens(const std::vector<TokenEntry>& entries);
// A missing file is an empty list.
Result<std::vector<TokenEntry>> read_tokens_file(const std::string& path);
// Writes atomically (temp file + rename) with mode 0600.
Status write_tokens_file(const std::string& path, const std::vector<TokenEntry>& entries);

struct AuthDecision {
  enum Kind {
    open,     // no tokens are configured: the caller is the local operator
    ok,       // a valid token
    missing,  // tokens are configured but none was sent
    invalid,  // a token was sent that is not (or no longer) valid
  } kind = open;
  std::string principal;
  Role role = Role::admin;
};

class TokenStore {
 public:
  // path "" : never any tokens (always open).
  explicit TokenStore(std::string path);

  // Checks an Authorization header value ("Bearer <token>").
  AuthDecision check(const std::string& authorization);
  // Whether any token is configured (after a reload check).
  bool configured();
  // Re-reads the file if it changed (or force). Returns false on a read error
  // (the previous snapshot stays).
  bool reload(bool force = false);
  const std::string& path() const { return m_path; }

 private:
  struct Snapshot {
    std::unordered_map<std::string, TokenEntry> by_hash;
    int64_t mtime_ns = -1;
    int64_t size = -1;
    int64_t inode = -1;  // the file is replaced by rename: a new inode
  };
  void maybe_reload();
  // A token was not found: re-check the file now. Returns whether a newer
  // snapshot was loaded.
  bool recheck_on_miss();
  std::shared_ptr<const Snapshot> snapshot() const;

  std::string m_path;
  std::shared_ptr<const Snapshot> m_snapshot;  // std::atomic_load / atomic_store only
  std::atomic<int64_t> m_last_check_ms{0};
};

}  // namespace asyncops
