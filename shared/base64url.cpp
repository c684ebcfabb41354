#include "shared/base64url.h"

#include <cstdint>
#include <cstring>

namespace asyncops {
namespace {
const char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}

std::string base64url_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  uint32_t val = 0;  // unsigned: the shifts below must not overflow (UBSan)
  int bits = -6;
  for (unsigned char c : bytes) {
    val = ((val << 8) + c) & 0xFFFFFF;
    bits += 8;
    while (bits >= 0) {
      out.push_back(k_alphabet[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(k_alphabet[((val << 8) >> (bits + 8)) & 0x3F]);
  return out;
}

Result<std::string> base64url_decode(const std::string& text) {
  std::string out;
  uint32_t val = 0;  // unsigned and masked: a long input must not overflow (UBSan)
  int bits = -8;
  for (char c : text) {
    const char* p = c == '\0' ? nullptr : std::strchr(k_alphabet, c);
    if (!p) return Error{"not base64url"};
    val = ((val << 6) + static_cast<uint32_t>(p - k_alphabet)) & 0xFFFFFF;
    bits += 6;
    if (bits >= 0) {
      out.push_back(static_cast<char>((val >> bits) & 0xFF));
      bits -= 8;
    }
  }
  return out;
}

}  // namespace asyncops
