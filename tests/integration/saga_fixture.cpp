#include "saga_fixture.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <SQLiteCpp/SQLiteCpp.h>

namespace asyncops::it {

using nlohmann::json;

json orders_saga_routes() {
  std::ifstream in(std::string(ASYNCOPS_SOURCE_DIR) + "/examples/orders-saga/routes.json");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

json& orders_route(json& routes) {
  for (json& r : routes["routes"]) {
    if (r["method"] == "POST" && r["path"] == "/orders") return r;
  }
  throw std::runtime_error("no POST /orders route");
}

json& saga_step(json& routes, const std::string& name) {
  for (json& s : orders_route(routes)["steps"]) {
    if (s["name"] == name) return s;
  }
  throw std::runtime_error("no step " + name);
}

std::vector<Effect> read_effects(const std::string& data_dir, const std::string& service) {
  std::vector<Effect> out;
  std::string path = data_dir + "/" + service + ".db";
  if (!std::ifstream(path)) return out;
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  db.setBusyTimeout(5000);
  if (!db.tableExists("effects")) return out;
  SQLite::Statement st(db, "SELECT seq, request_id, kind, sku, qty, amount FROM effects ORDER BY seq");
  while (st.executeStep()) {
    Effect e;
    e.seq = st.getColumn(0).getInt64();
    e.request_id = st.getColumn(1).getString();
    e.kind = st.getColumn(2).getString();
    e.sku = st.getColumn(3).isNull() ? "" : st.getColumn(3).getString();
    e.qty = st.getColumn(4).isNull() ? -1 : st.getColumn(4).getInt64();
    e.amount = st.getColumn(5).isNull() ? -1 : st.getColumn(5).getInt64();
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> kinds_of(const std::vector<Effect>& effects, const std::string& request_id) {
  std::vector<std::string> out;
  for (const Effect& e : effects) {
    if (e.request_id == request_id) out.push_back(e.kind);
  }
  return out;
}

SagaEffects read_saga_effects(const std::string& data_dir) {
  return {read_effects(data_dir, "inventory"), read_effects(data_dir, "payments"), read_effects(data_dir, "orders")};
}

namespace {

const std::string k_undo = ".undo";

bool is_undo(const std::string& id) {
  return id.size() > k_undo.size() && id.compare(id.size() - k_undo.size(), k_undo.size(), k_undo) == 0;
}

// Effects by request id; a second one for an id is reported.
std::map<std::string, const Effect*> index(const std::vector<Effect>& effects, const std::string& table,
                                           std::vector<std::string>& problems) {
  std::map<std::string, const Effect*> by_id;
  for (const Effect& e : effects) {
    if (!by_id.emplace(e.request_id, &e).second) {
      problems.push_back(table + ": request id " + e.request_id + " has two effects (seq " +
                         std::to_string(by_id[e.request_id]->seq) + " and " + std::to_string(e.seq) + ")");
    }
  }
  return by_id;
}

// Every undo in table names a forward effect of kind forward_kind, and undoes
// all of it (undone(forward) == undo's own figure).
void check_undos(const std::map<std::string, const Effect*>& by_id, const std::string& table, const char* forward_kind,
                 int64_t Effect::*figure, std::vector<std::string>& problems) {
  for (const auto& entry : by_id) {
    const Effect* e = entry.second;
    if (!is_undo(e->request_id)) continue;
    std::string forward = e->request_id.substr(0, e->request_id.size() - k_undo.size());
    auto f = by_id.find(forward);
    if (f == by_id.end() || f->second->kind != forward_kind) {
      problems.push_back(table + ": " + e->kind + " " + e->request_id + " has no " + forward_kind + " effect");
    } else if (f->second->*figure != e->*figure) {
      problems.push_back(table + ": " + e->kind + " " + e->request_id + " undid " + std::to_string(e->*figure) +
                         " of " + std::to_string(f->second->*figure));
    }
  }
}

std::string state_of(const json& v) { return v.is_object() ? v.value("state", "") : ""; }

}  // namespace

std::vector<std::string> check_saga_invariants(const SagaEffects& effects, const std::vector<json>& operations) {
  std::vector<std::string> problems;
  auto inventory = index(effects.inventory, "inventory", problems);
  auto payments = index(effects.payments, "payments", problems);
  auto orders = index(effects.orders, "orders", problems);
  check_undos(inventory, "inventory", "reserve", &Effect::qty, problems);
  check_undos(payments, "payments", "charge", &Effect::amount, problems);

  // Units and money balance.
  std::map<std::string, int64_t> reserved, released, ordered;
  for (const Effect& e : effects.inventory) {
    if (e.kind == "reserve") reserved[e.sku] += e.qty;
    if (e.kind == "release") released[e.sku] += e.qty;
  }
  int64_t charged = 0, refunded = 0, ordered_amount = 0;
  for (const Effect& e : effects.payments) {
    if (e.kind == "charge") charged += e.amount;
    if (e.kind == "refund") refunded += e.amount;
  }
  for (const Effect& e : effects.orders) {
    ordered[e.sku] += e.qty;
    ordered_amount += e.amount;
  }
  std::set<std::string> skus;
  for (const auto& m : {reserved, released, ordered}) {
    for (const auto& kv : m) skus.insert(kv.first);
  }
  for (const std::string& sku : skus) {
    if (reserved[sku] != released[sku] + ordered[sku]) {
      problems.push_back("sku " + sku + ": reserved " + std::to_string(reserved[sku]) + " != released " +
                         std::to_string(released[sku]) + " + ordered " + std::to_string(ordered[sku]));
    }
  }
  if (charged != refunded + ordered_amount) {
    problems.push_back("charged " + std::to_string(charged) + " != refunded " + std::to_string(refunded) +
                       " + ordered " + std::to_string(ordered_amount));
  }

  // Each operation's steps agree with the effects.
  std::set<std::string> known;
  for (const json& op : operations) {
    std::string id = op.value("id", "");
    if (!op.contains("steps") || !op["steps"].is_array() || op["steps"].size() != 3) {
      problems.push_back("operation " + id + ": no steps array of 3");
      continue;
    }
    const json& steps = op["steps"];
    struct Expect {
      const std::map<std::string, const Effect*>& table;
      const char* service;
      std::string forward, undo;
    };
    Expect expect[] = {{inventory, "inventory", id + ".reserve", id + ".reserve.undo"},
                       {payments, "payments", id + ".charge", id + ".charge.undo"},
                       {orders, "orders", id + ".create", ""}};
    for (size_t i = 0; i < 3; ++i) {
      const json& step = steps[i];
      known.insert(expect[i].forward);
      bool completed = state_of(step) == "completed";
      bool has = expect[i].table.count(expect[i].forward) > 0;
      if (completed != has) {
        problems.push_back("operation " + id + ": step " + step.value("name", "?") + " is " + state_of(step) +
                           (has ? " but has" : " but has no") + " effect in " + expect[i].service);
      }
      if (expect[i].undo.empty()) continue;
      known.insert(expect[i].undo);
      bool undone = state_of(step["compensation"]) == "completed";
      bool has_undo = expect[i].table.count(expect[i].undo) > 0;
      if (undone != has_undo) {
        problems.push_back("operation " + id + ": compensation of " + step.value("name", "?") + " is " +
                           state_of(step["compensation"]) + (has_undo ? " but has" : " but has no") + " effect in " +
                           expect[i].service);
      }
    }
    bool op_completed = op.value("state", "") == "completed";
    if (op_completed != (orders.count(id + ".create") > 0)) {
      problems.push_back("operation " + id + " is " + op.value("state", "") +
                         (op_completed ? " without an order" : " with an order"));
    }
  }
  // No effect for a request id of an operation not in the list.
  for (const auto* table : {&inventory, &payments, &orders}) {
    for (const auto& entry : *table) {
      if (!known.count(entry.first)) problems.push_back("an effect for an unknown request id " + entry.first);
    }
  }
  return problems;
}

}  // namespace asyncops::it
