#pragma once
// The request the gateway tests send: a JSON body (possibly empty).
#include <map>
#include <string>

#include "daemon/gateway.h"

namespace asyncops::test {

inline ApiRequest json_request(const std::string& method, const std::string& path, const std::string& body = "",
                               std::map<std::string, std::string> query = {}) {
  ApiRequest r;
  r.method = method;
  r.path = path;
  r.body = body;
  r.query = std::move(query);
  r.headers["content-type"] = "application/json";
  return r;
}

}  // namespace asyncops::test
