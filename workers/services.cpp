#include "workers/services/users.h"
#include "workers/worker.h"

namespace asyncops {

const Service* find_service(const std::string& name) {
  // Adding a service: write its handlers and list it here. No daemon code
  // changes; its routes go in the route table.
  static const Service users = users_service();
  if (name == users.name) return &users;
  return nullptr;
}

}  // namespace asyncops
