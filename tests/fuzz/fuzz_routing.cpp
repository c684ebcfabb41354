// libFuzzer: request routing and body parsing as Gateway::handle does them,
// without the store. Input: "METHOD PATH\n" then the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/router.h"
#include "daemon/routes.h"

using namespace asyncops;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const RouteTable table = RouteTable::load_json(RouteTable::default_json()).value();
  static const Router<const Route*> router = [] {
    Router<const Route*> r;
    for (const char* t : {"/healthz", "/operations", "/operations/{id}", "/operations/{id}/history",
                          "/operations/{id}/events", "/events"}) {
      r.add("GET", PathTemplate::parse(t).value(), nullptr);
    }
    for (const std::string& c : table.collections()) {
      r.add("GET", PathTemplate::parse(c).value(), nullptr);
      r.add("GET", PathTemplate::parse(c + "/{id}").value(), nullptr);
    }
    for (const Route& route : table.routes()) r.add(route.method, route.path, &route);
    return r;
  }();
  std::string in(reinterpret_cast<const char*>(data), size);
  size_t nl = in.find('\n');
  std::string line = in.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : in.substr(nl + 1);
  size_t sp = line.find(' ');
  std::string method = line.substr(0, sp);
  std::string path = sp == std::string::npos ? "/" : line.substr(sp + 1);
  auto m = router.match(method, path);
  if (m.kind != decltype(m)::found || !*m.handler) return 0;
  const Route& route = **m.handler;
  if (route.resource) (void)route.resource->expand(m.params);
  bool too_deep = false;
  size_t values = 0;
  nlohmann::json j = nlohmann::json::parse(
      body,
      [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json&) {
        if (depth > 64) too_deep = true;
        if (ev == nlohmann::json::parse_event_t::value && ++values > 256) too_deep = true;
        return !too_deep;
      },
      false);
  if (!too_deep && !j.is_discarded()) (void)validate_body(route, j);
  return 0;
}
