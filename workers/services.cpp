#include "workers/services/inventory.h"
#include "workers/services/orders.h"
#include "workers/services/payments.h"
#include "workers/services/peer_job.h"
#include "workers/services/users.h"
#include "workers/worker.h"

namespace asyncops {

const Service* find_service(const std::string& name) {
  // Adding a service: write its handlers and list it here. No daemon code
  // changes; its routes go in the route table.
  static const Service users = users_service();
  // The demo services of the orders saga (examples/orders-saga).
  static const Service inventory = inventory_service();
  static const Service payments = payments_service();
  static const Service orders = orders_service();
  // The peers' job, for bench/peers.sh (JOB=peer).
  static const Service peer_job = peer_job_service();
  for (const Service* s : {&users, &inventory, &payments, &orders, &peer_job}) {
    if (name == s->name) return s;
  }
  return nullptr;
}

}  // namespace asyncops
