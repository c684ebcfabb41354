#include "shared/tokens.h"

#include "shared/base64url.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/rand.h>

namespace asyncops {
namespace {

bool is_hex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

const char* to_string(Role r) {
  switch (r) {
    case Role::submitter: return "submitter";
    case Role::reader: return "reader";
    case Role::admin: return "admin";
  }
  return "reader";
}

std::optional<Role> parse_role(const std::string& s) {
  if (s == "submitter") return Role::submitter;
  if (s == "reader") return Role::reader;
  if (s == "admin") return Role::admin;
  return std::nullopt;
}

std::string sha256_hex(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, data.data(), data.size());
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  static const char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string new_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  return "aot_" + base64url_encode(std::string(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool valid_principal(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!(std::isalnum(c) || c == '.' || c == '_' || c == '@' || c == '-')) return false;
  }
  return true;
}

Result<std::vector<TokenEntry>> parse_tokens(const std::string& text) {
  std::vector<TokenEntry> out;
  std::istringstream in(text);
  int lineno = 0;
  for (std::string line; std::getline(in, line);) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    std::istringstream fields(line);
    std::string hash, principal, role, extra;
    fields >> hash >> principal >> role >> extra;
    std::string where = "tokens line " + std::to_string(lineno) + ": ";
    if (role.empty() || !extra.empty()) return Error{where + "expected 'sha256:<hex> PRINCIPAL ROLE'"};
    if (hash.rfind("sha256:", 0) != 0 || !is_hex64(hash.substr(7))) {
      return Error{where + "the hash must be sha256: and 64 lower-case hex digits"};
    }
    if (!valid_principal(principal)) return Error{where + "bad principal name"};
    auto r = parse_role(role);
    if (!r) return Error{where + "role must be submitter, reader or admin"};
    out.push_back({hash.substr(7), principal, *r});
  }
  return out;
}

std::string format_tokens(const std::vector<TokenEntry>& entries) {
  std::string out = "# asyncops API tokens: sha256:<hex of the token> PRINCIPAL ROLE\n";
  for (const auto& e : entries) out += "sha256:" + e.hash + " " + e.principal + " " + to_string(e.role) + "\n";
  return out;
}

Result<std::vector<TokenEntry>> read_tokens_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::vector<TokenEntry>{};
    return Error{"cannot read " + path};
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = parse_tokens(ss.str());
  if (!r) return Error{path + ": " + r.error()};
  return r;
}

Status write_tokens_file(const std::string& path, const std::vector<TokenEntry>& entries) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error{"cannot write " + tmp};
  ::fchmod(fd, 0600);
  std::string text = format_tokens(entries);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ok = ::fsync(fd) == 0 && ok;
  ::close(fd);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error{"cannot write " + path};
  }
  return Status::success();
}

}  // namespace asyncops
