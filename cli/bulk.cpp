// cancel and forget, for one operation or many: by ids, or (cancel) by the
// list filters, with a count and a confirmation on a terminal.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/op_ref.h"
#include "shared/clock.h"
#include "shared/duration.h"

namespace asyncops {
namespace {

// Asks "PROMPT [y/N]" when stdin and stderr are a terminal and --yes was not
// given; true means go on.
bool confirmed(const BulkOptions& o, const std::string& prompt) {
  if (o.yes || ::isatty(STDIN_FILENO) != 1 || ::isatty(STDERR_FILENO) != 1) return true;
  std::cerr << prompt << " [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  return answer == "y" || answer == "Y" || answer == "yes";
}

// Sends method to path_for(id) for each id. An answer whose status is in
// `expected` goes to on_answer; any other is printed and makes *worst an
// error, and the next id is tried. False, having printed why, when the
// daemon cannot be reached (then nothing more is sent).
bool send_each(ApiClient& client, const std::vector<std::string>& ids, const std::string& method,
               const std::function<std::string(const std::string&)>& path_for, std::initializer_list<int> expected,
               const std::function<void(const std::string&, const ApiResponse&)>& on_answer, int* worst) {
  for (const auto& id : ids) {
    ApiResponse r = client.send(method, path_for(id), "");
    if (!r.reached) {
      print_error(r.describe());
      return false;
    }
    if (std::find(expected.begin(), expected.end(), r.status) == expected.end()) {
      print_error(id + ": " + r.describe());
      *worst = std::max(*worst, static_cast<int>(exit_code::error));
      continue;
    }
    on_answer(id, r);
  }
  return true;
}

// Every unfinished operation the filters choose, newest first.
bool select_unfinished(ApiClient& client, const BulkOptions& o, std::vector<std::string>* ids, int* exit) {
  int64_t before_ms = INT64_MAX;
  if (!o.older_than.empty()) {
    auto d = parse_duration(o.older_than);
    if (!d) {
      print_error("--older-than " + o.older_than + ": expected a duration like 30s, 10m, 2h or 7d");
      *exit = exit_code::usage;
      return false;
    }
    before_ms = now_ms() - d->count();
  }
  std::vector<std::string> states = {"pending", "processing"};
  if (!o.state.empty()) states = {o.state};
  for (const auto& state : states) {
    std::string cursor;
    for (;;) {
      std::string q = "/operations?limit=1000&state=" + url_encode(state);
      if (!o.name.empty()) q += "&name=" + url_encode(o.name);
      if (!o.owner.empty()) q += "&owner=" + url_encode(o.owner);
      if (!o.resource.empty()) q += "&resource=" + url_encode(o.resource);
      if (!cursor.empty()) q += "&cursor=" + url_encode(cursor);
      ApiResponse r = client.get(q);
      if (!r.reached || r.status != 200 || !r.json.is_object()) {
        print_error(r.describe());
        *exit = r.reached ? exit_code::error : exit_code::unreachable;
        return false;
      }
      for (const auto& op : r.json["items"]) {
        auto created = parse_rfc3339(op.value("created_at", ""));
        if (created && created.value() < before_ms) ids->push_back(op["id"]);
      }
      if (!r.json["next"].is_string()) break;
      cursor = r.json["next"].get<std::string>();
    }
  }
  return true;
}

// Resolves every reference; prints one line per one that does not resolve.
std::vector<std::string> resolve_all(ApiClient& client, const std::vector<std::string>& refs, int* worst) {
  std::vector<std::string> ids;
  for (const auto& ref : refs) {
    ResolvedOp op = resolve_op(client, ref);
    if (op.error.empty()) {
      ids.push_back(op.id);
    } else {
      print_error(op.error);
      *worst = std::max(*worst, op.exit_code);
    }
  }
  return ids;
}

}  // namespace

int cmd_cancel(const GlobalOptions& g, const BulkOptions& o) {
  bool by_filter = !o.state.empty() || !o.name.empty() || !o.older_than.empty() || !o.owner.empty() ||
                   !o.resource.empty();
  if (by_filter == !o.refs.empty()) {
    print_error(by_filter ? "give operation ids or filters (--state, --name, --older-than, --owner, --resource), not both"
                          : "give operation ids, or choose them with --state, --name, --older-than, --owner and --resource");
    return exit_code::usage;
  }
  if (o.state == "completed" || o.state == "rejected" || o.state == "failed" || o.state == "canceled") {
    print_error("--state " + o.state + ": only pending or processing operations can be canceled");
    return exit_code::usage;
  }
  ApiClient client(g.url);
  int worst = exit_code::ok;
  std::vector<std::string> ids;
  if (by_filter) {
    if (!select_unfinished(client, o, &ids, &worst)) return worst;
    if (ids.empty()) {
      std::cerr << "asyncops: no unfinished operation matches; nothing to cancel" << std::endl;
      return exit_code::ok;
    }
  } else {
    ids = resolve_all(client, o.refs, &worst);
  }
  Output out = g.out();
  bool single = !by_filter && o.refs.size() == 1;
  if (!single && !ids.empty() &&
      !confirmed(o, "cancel " + std::to_string(ids.size()) + (ids.size() == 1 ? " operation?" : " operations?"))) {
    std::cerr << "asyncops: nothing canceled" << std::endl;
    return exit_code::error;
  }
  nlohmann::json results = nlohmann::json::array();
  size_t requested = 0;
  bool reached = send_each(
      client, ids, "POST", [](const std::string& id) { return "/operations/" + url_encode(id) + "/cancel"; },
      {200, 202},
      [&](const std::string&, const ApiResponse& r) {
        results.push_back(r.json);
        if (r.status == 202) ++requested;
      },
      &worst);
  if (!reached) return exit_code::unreachable;
  if (single) {
    if (!results.empty()) out.operation(results[0]);
  } else if (out.format == OutputFormat::table) {
    out.operations(results);
  } else {
    out.list(results);
  }
  if (!single) {
    std::cerr << "asyncops: canceled " << results.size() - requested << ", cancel requested for " << requested
              << " in progress, " << ids.size() - results.size() << " refused" << std::endl;
  }
  if (requested > 0 && ::isatty(STDERR_FILENO)) {
    std::cerr << "cancel requested: the worker is told; if it already did the work, the operation shows that outcome\n";
  }
  return worst;
}

int cmd_forget(const GlobalOptions& g, const BulkOptions& o) {
  ApiClient client(g.url);
  int worst = exit_code::ok;
  std::vector<std::string> ids = resolve_all(client, o.refs, &worst);
  if (ids.size() > 1 && !confirmed(o, "forget " + std::to_string(ids.size()) + " operations?")) {
    std::cerr << "asyncops: nothing forgotten" << std::endl;
    return exit_code::error;
  }
  Output out = g.out();
  nlohmann::json results = nlohmann::json::array();
  bool reached = send_each(
      client, ids, "DELETE", [](const std::string& id) { return "/operations/" + url_encode(id); }, {204, 200},
      [&](const std::string& id, const ApiResponse&) {
        results.push_back({{"id", id}, {"forgotten", true}});
        if (out.format == OutputFormat::table) std::cout << "forgot " << id << "\n";
      },
      &worst);
  if (!reached) return exit_code::unreachable;
  if (out.format != OutputFormat::table) out.list(results);
  return worst;
}

}  // namespace asyncops
