#pragma once
// A command as the unit tests make them: a new request id, and the names
// (and, where the test needs them, the origin and resource) it gives.
#include <string>

#include "shared/envelope.h"
#include "shared/ids.h"

namespace asyncops::test {

inline Command command_of(std::string name, std::string service, std::string origin = "",
                          std::string resource = "") {
  Command c;
  c.id = new_uuid_v7();
  c.name = std::move(name);
  c.service = std::move(service);
  c.origin = std::move(origin);
  c.resource = std::move(resource);
  return c;
}

}  // namespace asyncops::test
