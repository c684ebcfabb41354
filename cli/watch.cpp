// watch, tail, and the stream-following half of submit --wait.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/op_ref.h"
#include "cli/sse.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

volatile sig_atomic_t g_interrupt_code = 130;

extern "C" void on_interrupt(int) {
  // Leave the terminal tidy and exit at once: a blocked read must not keep
  // Ctrl-C waiting. Only async-signal-safe calls here.
  if (::isatty(STDOUT_FILENO)) {
    const char reset[] = "\x1b[0m\n";
    ssize_t n = ::write(STDOUT_FILENO, reset, sizeof reset - 1);
    (void)n;
  }
  ::_exit(g_interrupt_code);
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || !it->is_string() ? "" : it->get<std::string>();
}

// "07:20:10.433" from an RFC 3339 time.
std::string clock_part(const std::string& t) { return t.size() >= 23 ? t.substr(11, 12) : t; }

}  // namespace

std::string timed_out_message(const GlobalOptions& g, const std::string& op_id, const json& op) {
  std::string state = str(op, "state"), service = str(op, "service");
  std::string msg = "timed out waiting for " + op_id;
  if (state == "pending" && !service.empty()) {
    // Still pending: the usual cause is that nothing runs its service.
    ApiClient client(g.url);
    ApiResponse r = client.get("/workers", 3);
    if (r.reached && r.status == 200 && r.json.is_object() && r.json["items"].is_array()) {
      bool served = false;
      for (const auto& w : r.json["items"]) served = served || str(w, "service") == service;
      if (!served) {
        return msg + ": no live worker serves service '" + service + "' (still pending; `asyncops workers` lists " +
               "them, `asyncops worker --service " + service + "` starts one)";
      }
    }
  }
  return msg + " (still " + state + ")";
}

void install_interrupt_handler(int exit_code) {
  g_interrupt_code = exit_code;
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int follow_operation(const GlobalOptions& g, const std::string& op_id, double timeout_s,
                     const std::function<void(const json&)>& on_change, json* final_op) {
  auto deadline = timeout_s > 0 ? Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))
                                : Clock::time_point::max();
  auto remaining_s = [&] {
    if (timeout_s <= 0) return 60;
    double r = std::chrono::duration<double>(deadline - Clock::now()).count();
    return std::max(1, std::min(60, static_cast<int>(std::ceil(r))));
  };
  bool done = false;
  bool timed_out = false;
  bool ever_connected = false;
  std::string last_id;
  ConnectionNotices notices;
  for (int failures = 0;; ++failures) {
    auto result = follow_stream(
        g.url, "/operations/" + url_encode(op_id) + "/events", last_id,
        [&](const SseEvent& e) {
          json op = json::parse(e.data, nullptr, false);
          if (!op.is_object()) return true;
          *final_op = op;
          on_change(op);
          if (op.value("done", false)) {
            done = true;
            return false;
          }
          if (Clock::now() >= deadline) {
            timed_out = true;
            return false;
          }
          return true;
        },
        remaining_s(),
        [&] {
          ever_connected = true;
          failures = 0;
          notices.connected();
        });
    last_id = result.last_id;
    if (done) return exit_code_for_state(str(*final_op, "state"));
    if (result.end == StreamEnd::http_error) {
      print_error(result.response.describe());
      return exit_code::error;
    }
    if (timed_out || Clock::now() >= deadline) {
      print_error(timed_out_message(g, op_id, *final_op));
      return exit_code::timed_out;
    }
    if (!ever_connected && failures == 0) {
      // Never connected: is the daemon there at all?
      ApiClient probe(g.url);
      ApiResponse r = probe.get("/healthz", 3);
      if (!r.reached) {
        print_error(r.describe());
        return exit_code::unreachable;
      }
    }
    // The stream broke (the daemon died or restarts): say so once, and
    // reconnect with Last-Event-ID so that no change is missed.
    if (ever_connected) notices.lost();
    if (failures >= 120) {
      print_error(result.response.describe());
      return exit_code::unreachable;
    }
    auto pause = std::chrono::milliseconds(std::min(2000, 250 * (failures + 1)));
    if (Clock::now() + pause > deadline) pause = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    std::this_thread::sleep_for(std::max(pause, std::chrono::milliseconds(0)));
  }
}

int cmd_watch(const GlobalOptions& g, const std::string& op_ref, double timeout_s) {
  std::string op_id;
  {
    ApiClient client(g.url);
    ResolvedOp op = resolve_op(client, op_ref);
    if (!op.error.empty()) {
      print_error(op.error);
      return op.exit_code;
    }
    op_id = op.id;
  }
  install_interrupt_handler(130);
  Output out = g.out();
  bool header = false;
  json final_op;
  json previous;  // the document before, by which a saga's step changes are told
  int code = follow_operation(
      g, op_id, timeout_s,
      [&](const json& op) {
        if (out.format != OutputFormat::table) {
          std::cout << op.dump() << std::endl;
          return;
        }
        if (!header) {
          std::cout << str(op, "name") << " " << str(op, "id") << "  " << str(op, "origin") << "\n";
          header = true;
        }
        for (const std::string& line : watch_lines(previous, op, out)) std::cout << line << "\n";
        std::cout << std::flush;
        previous = op;
      },
      &final_op);
  return code;
}

int cmd_tail(const GlobalOptions& g, const std::string& state, const std::string& name) {
  install_interrupt_handler(exit_code::ok);  // Ctrl-C is how tail ends
  Output out = g.out();
  bool board = out.format == OutputFormat::table && ::isatty(STDOUT_FILENO);
  // Into a pipe tail writes JSON lines unless -o table was asked for (flag,
  // ASYNCOPS_OUTPUT or the config file): then one table line per change.
  bool lines = !board && out.format == OutputFormat::table && g.output == "table" && !g.json;
  std::string query;
  if (!state.empty()) query += (query.empty() ? "?" : "&") + std::string("state=") + url_encode(state);
  if (!name.empty()) query += (query.empty() ? "?" : "&") + std::string("name=") + url_encode(name);

  std::vector<std::string> order;  // operation ids, first seen first
  std::map<std::string, json> latest;
  size_t drawn = 0;
  size_t rows = 20;
  if (board) {
    struct winsize ws {};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 4) rows = ws.ws_row - 2;
  }
  auto redraw = [&] {
    // One line per operation, updated in place.
    std::string frame;
    if (drawn > 0) frame += "\x1b[" + std::to_string(drawn) + "A";
    size_t first = order.size() > rows ? order.size() - rows : 0;
    drawn = 0;
    for (size_t i = first; i < order.size(); ++i) {
      const json& op = latest[order[i]];
      std::string code_s = str(op, "code");
      char line[512];
      std::snprintf(line, sizeof line, "%s  %-12s  ", str(op, "id").c_str(), str(op, "name").substr(0, 12).c_str());
      frame += "\r" + std::string(line) + out.state(str(op, "state")) +
               (code_s.empty() ? "" : "  " + code_s) + "  " + clock_part(str(op, "updated_at")) + "\x1b[K\n";
      ++drawn;
    }
    std::cout << frame << std::flush;
  };
  if (board) std::cerr << "following " << g.url << "/events" << query << " (Ctrl-C to stop)" << std::endl;

  std::string last_id;
  int failures = 0;
  bool ever_connected = false;
  ConnectionNotices notices;
  for (;;) {
    auto on_connected = [&] {
      ever_connected = true;
      failures = 0;
      notices.connected();
    };
    auto result = follow_stream(g.url, "/events" + query, last_id, [&](const SseEvent& e) {
      failures = 0;
      json op = json::parse(e.data, nullptr, false);
      if (!op.is_object()) return true;
      if (lines) {
        std::string code_s = str(op, "code");
        std::cout << clock_part(str(op, "updated_at")) << "  " << str(op, "id") << "  " << str(op, "name") << "  "
                  << str(op, "state") << (code_s.empty() ? "" : "  " + code_s) << std::endl;
        return true;
      }
      if (!board) {
        std::cout << op.dump() << std::endl;
        return true;
      }
      std::string id = str(op, "id");
      if (!latest.count(id)) order.push_back(id);
      latest[id] = op;
      if (order.size() > 10 * rows) {  // forget what scrolled away long ago
        latest.erase(order.front());
        order.erase(order.begin());
      }
      redraw();
      return true;
    }, 60, on_connected);
    last_id = result.last_id;
    if (result.end == StreamEnd::http_error) {
      print_error(result.response.describe());
      return exit_code::error;
    }
    if (++failures > 1 && failures > 30) {
      print_error(result.response.describe());
      return exit_code::unreachable;
    }
    if (ever_connected) notices.lost();  // then "connection back" once a reconnect is answered
    if (failures == 1 && result.end == StreamEnd::broken && !ever_connected) {
      ApiClient probe(g.url);
      if (!probe.get("/healthz", 3).reached) {
        print_error(result.response.describe());
        return exit_code::unreachable;
      }
    }
    // Reconnect and resume after the last event seen.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(5000, 250 * failures)));
  }
}

}  // namespace asyncops
