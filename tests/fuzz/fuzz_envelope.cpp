// libFuzzer: the wire envelope decoders. First byte picks the decoder
// (mod 8: command, event, heartbeat, cancel, ready, claim, grant, heartbeat).
#include <cstddef>
#include <cstdint>
#include <string>

#include "shared/envelope.h"

using namespace asyncops;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 8) {
    case 0:
      if (auto c = decode_command(k_kind_command, body)) (void)encode(c.value());
      break;
    case 3:
      if (auto c = decode_cancel(body)) (void)encode(c.value());
      break;
    case 1:
      if (auto e = decode_event(body)) (void)encode(e.value());
      break;
    case 4:
      if (auto r = decode_ready(body)) (void)encode(r.value());
      break;
    case 5:
      if (auto c = decode_claim(body)) (void)encode(c.value());
      break;
    case 6:
      if (auto g = decode_grant(body)) (void)encode(g.value());
      break;
    default:
      if (auto h = decode_heartbeat(body)) (void)encode(h.value());
      break;
  }
  return 0;
}
