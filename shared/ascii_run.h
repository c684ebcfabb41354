#pragma once
// The JSON code's inner loops: how many bytes from p on need no second
// look inside a JSON string, eight at a time.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace asyncops {

// A byte of a JSON string that is copied as it is, read or written:
// printable ASCII (0x20 to 0x7f) other than '"' and '\\'.
inline bool plain_json_byte(char c) {
  auto b = static_cast<unsigned char>(c);
  return b >= 0x20 && b < 0x80 && b != '"' && b != '\\';
}

// The length of the run of plain_json_bytes at the start of [p, p + n),
// in whole 8-byte words. Whole 8-byte words
// are tested with the usual bit tricks (a byte below 0x20, a byte equal to
// '"' or '\\', a byte with its high bit set); the word where one is found,
// and the tail, are left to the caller's own byte loop, which should go on
// to the first byte that is not plain before it calls this again.
inline std::size_t plain_ascii_run(const char* p, std::size_t n) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, p + i, 8);
    std::uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    std::uint64_t special = ((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | w;
    if (special & highs) break;
  }
  return i;
}

}  // namespace asyncops
