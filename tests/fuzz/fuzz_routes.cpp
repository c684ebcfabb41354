// libFuzzer: the route table loader (RouteTable::load_json) and what the
// daemon derives from a loaded table.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/routes.h"

using namespace asyncops;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t = RouteTable::load_json(std::string(reinterpret_cast<const char*>(data), size));
  if (!t) return 0;
  for (const std::string& c : t.value().collections()) (void)t.value().read_policy(c);
  (void)t.value().services();
  for (const Route& r : t.value().routes()) {
    std::map<std::string, std::string> p;
    (void)r.path.match(r.path.text(), &p);
    if (r.resource) (void)r.resource->expand(p);
  }
  return 0;
}
