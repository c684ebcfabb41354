// submit, get, list: the commands that talk to the daemon's HTTP API.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/list_query.h"
#include "cli/op_ref.h"
#include "shared/clock.h"
#include "shared/ids.h"

namespace asyncops {
namespace {

// --data: the text itself, or "@FILE" (the file's content), or "@-" (stdin).
Result<std::string> read_data(const std::string& data) {
  if (data.empty() || data[0] != '@') return data;
  std::string path = data.substr(1);
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return Error{"cannot read " + path};
    ss << in.rdbuf();
  }
  return ss.str();
}

int http_failure(const ApiResponse& r) {
  print_error(r.describe());
  return r.reached ? exit_code::error : exit_code::unreachable;
}

// The answer to a command sent (submit, retry): print the operation, or,
// with wait, follow it to its end (a state line on stderr when progress).
int answer_accepted(const GlobalOptions& g, const ApiResponse& r, bool wait, double timeout_s, bool progress) {
  if (!r.reached || (r.status != 202 && r.status != 200)) return http_failure(r);
  if (!r.json.is_object() || !r.json.contains("id")) {
    print_error("the daemon answered " + std::to_string(r.status) + " without an operation");
    return exit_code::error;
  }
  Output out = g.out();
  if (!wait) {
    out.operation(r.json);
    return exit_code::ok;
  }
  install_interrupt_handler(130);
  nlohmann::json final_op = r.json;
  int code = follow_operation(
      g, r.json["id"].get<std::string>(), timeout_s,
      [&](const nlohmann::json& op) {
        if (progress) std::cerr << "\r" << op.value("id", "") << " " << out.state(op.value("state", "")) << "\x1b[K" << std::flush;
      },
      &final_op);
  if (progress) std::cerr << "\r\x1b[K" << std::flush;
  if (code != exit_code::unreachable && code != exit_code::error) out.operation(final_op);
  return code;
}

}  // namespace

int wait_for_operation(const GlobalOptions& g, const std::string& op_id, double timeout_s,
                       nlohmann::json* final_op) {
  ApiClient client(g.url);
  auto start = std::chrono::steady_clock::now();
  bool progress = ::isatty(STDERR_FILENO) == 1;
  std::string last_state;
  std::chrono::steady_clock::time_point unreachable_since{};
  for (;;) {
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double remaining = timeout_s > 0 ? timeout_s - elapsed : 30;
    int wait = static_cast<int>(std::max(0.0, std::min(30.0, remaining)));
    ApiResponse r = client.get("/operations/" + url_encode(op_id) + "?wait=" + std::to_string(wait),
                               wait + 10);
    if (!r.reached && unreachable_since.time_since_epoch().count() == 0) {
      unreachable_since = std::chrono::steady_clock::now();
    }
    if (!r.reached && std::chrono::steady_clock::now() - unreachable_since < std::chrono::seconds(15) &&
        (timeout_s <= 0 || elapsed < timeout_s)) {
      // The daemon may be restarting (asyncops up restarts it): try again.
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
      continue;
    }
    if (r.reached) unreachable_since = {};
    if (!r.reached || r.status != 200 || !r.json.is_object()) return http_failure(r);
    *final_op = r.json;
    std::string state = r.json.value("state", "");
    if (progress && state != last_state) {
      std::cerr << "\r" << op_id << " " << g.out().state(state) << "\x1b[K" << std::flush;
      last_state = state;
    }
    if (r.json.value("done", false)) {
      if (progress) std::cerr << "\r\x1b[K" << std::flush;
      return exit_code_for_state(state);
    }
    if (timeout_s > 0 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >= timeout_s) {
      if (progress) std::cerr << "\n";
      print_error(timed_out_message(g, op_id, r.json));
      return exit_code::timed_out;
    }
  }
}

int cmd_submit(const GlobalOptions& g, const SubmitOptions& o) {
  std::string method = o.method;
  for (auto& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (method != "POST" && method != "PUT" && method != "PATCH" && method != "DELETE") {
    print_error("METHOD must be POST, PUT, PATCH or DELETE, not " + o.method);
    return exit_code::usage;
  }
  if (o.path.empty() || o.path[0] != '/') {
    print_error("PATH must start with '/', e.g. /users");
    return exit_code::usage;
  }
  auto body = read_data(o.data);
  if (!body) {
    print_error(body.error());
    return exit_code::error;
  }
  std::map<std::string, std::string> headers;
  if (!o.idempotency_key.empty()) headers["Idempotency-Key"] = o.idempotency_key;
  ApiClient client(g.url);
  ApiResponse r = client.send(method, o.path, body.value(), headers);
  return answer_accepted(g, r, o.wait, o.timeout_s, /*progress=*/::isatty(STDERR_FILENO) == 1);
}

int cmd_retry(const GlobalOptions& g, const RetryOptions& o) {
  ApiClient client(g.url);
  ResolvedOp op = resolve_op(client, o.ref);
  if (!op.error.empty()) {
    print_error(op.error);
    return op.exit_code;
  }
  std::map<std::string, std::string> headers;
  if (!o.idempotency_key.empty()) headers["Idempotency-Key"] = o.idempotency_key;
  ApiResponse r = client.send("POST", "/operations/" + url_encode(op.id) + "/retry", "", headers);
  return answer_accepted(g, r, o.wait, o.timeout_s, /*progress=*/false);
}

int cmd_get(const GlobalOptions& g, const std::string& op_ref) {
  ApiClient client(g.url);
  ResolvedOp op = resolve_op(client, op_ref);
  if (!op.error.empty()) {
    print_error(op.error);
    return op.exit_code;
  }
  ApiResponse r = client.get("/operations/" + url_encode(op.id));
  if (!r.reached || r.status != 200) return http_failure(r);
  g.out().operation(r.json);
  return exit_code::ok;
}

int cmd_list(const GlobalOptions& g, const ListOptions& o) {
  int64_t now = now_ms();
  auto since = resolve_since(o.since, now);
  auto until = resolve_time("--until", o.until, now);
  if (!since || !until) {
    print_error(!since ? since.error() : until.error());
    return exit_code::usage;
  }
  ApiClient client(g.url);
  Output out = g.out();
  nlohmann::json all = nlohmann::json::array();  // --all, table or json: printed once at the end
  std::string cursor = o.cursor;
  for (;;) {
    ApiResponse r = client.get("/operations" + list_query(o, since.value(), until.value(), cursor));
    if (!r.reached || r.status != 200 || !r.json.is_object()) return http_failure(r);
    const nlohmann::json& items = r.json["items"];
    const nlohmann::json& next = r.json["next"];
    if (!o.all) {
      if (out.format == OutputFormat::json) out.value(r.json);  // the whole page, with "next"
      else out.operations(items);
      // On stderr whatever stdout is, so `list | wc -l` still tells the user
      // it stopped at a page; the command keeps the filters (the cursor
      // records only a position).
      if (next.is_string()) {
        std::cout << std::flush;
        std::cerr << "more: " << next_page_command(g.repeat_args, o, next.get<std::string>()) << std::endl;
      }
      return exit_code::ok;
    }
    if (out.format == OutputFormat::jsonl) {
      out.operations(items);
    } else {
      for (const auto& op : items) all.push_back(op);
    }
    if (!next.is_string()) break;
    cursor = next.get<std::string>();
  }
  if (out.format == OutputFormat::json) out.value({{"items", all}, {"next", nullptr}});
  else if (out.format == OutputFormat::table) out.operations(all);
  return exit_code::ok;
}

}  // namespace asyncops
