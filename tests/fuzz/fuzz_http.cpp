// libFuzzer: HTTP/1.1 request parsing exactly as a connection does it
// (Beast's parser plus the RFC 9112 checks in daemon/http_server.cpp).
// Input: the raw bytes of a request. Every outcome must be a request, a
// problem+json reply or "need more bytes": never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/http_api.h"

using namespace asyncops;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  HttpLimits limits;
  limits.max_body_bytes = 4096;
  auto p = parse_http_request(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (p.error && (p.error->status < 400 || p.error->status > 499)) __builtin_trap();
  if (p.request && p.request->body.size() > limits.max_body_bytes) __builtin_trap();
  return 0;
}
