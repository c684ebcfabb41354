#pragma once
// The tokens file (issue 7): the contract between `asyncops token` (which
// edits it) and the daemon (which reads it, daemon/auth.h). It maps bearer
// tokens to a principal and a role. Only a SHA-256 of each token is
// stored, one per line:
//
//   sha256:<64 hex> <principal> <role>
//
// Blank lines and lines starting with '#' are ignored.
#include <optional>
#include <string>
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

}  // namespace asyncops
