#include "cli/app.h"

#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/token_commands.h"
#include "shared/duration.h"

namespace asyncops {

int cli_main(int argc, char** argv) {
  CLI::App app{"asyncops: submit commands to asyncopsd, follow operations, run the system"};
  app.set_version_flag("--version", std::string("asyncops ") + "0.1.0");
  app.require_subcommand(1);
  app.fallthrough();  // global flags work after the subcommand too: `asyncops list --json`
  app.footer(
      "Exit codes: 0 ok/completed, 1 error, 2 usage, 3 rejected, 4 failed or canceled,\n"
      "5 timed out waiting, 6 daemon unreachable. See asyncops(1).");

  GlobalOptions g;
  g.url = default_url();
  app.add_option("--url", g.url, "Daemon URL (env ASYNCOPS_URL; default: the running daemon's, or http://127.0.0.1:8080)")
      ->envname("ASYNCOPS_URL");
  app.add_option("-o,--output", g.output, "Output format: table, json or jsonl")
      ->check(CLI::IsMember({"table", "json", "jsonl"}));
  app.add_flag("--json", g.json, "Same as -o json");
  // Access (issue 7): read by ApiClient and the SSE client from the environment.
  std::string token, cacert;
  app.add_option("--token", token, "API token sent as Authorization: Bearer (env ASYNCOPS_TOKEN)")
      ->envname("ASYNCOPS_TOKEN");
  app.add_option("--cacert", cacert, "CA certificate (PEM) to trust for https:// URLs (env ASYNCOPS_CACERT)")
      ->envname("ASYNCOPS_CACERT");
  app.parse_complete_callback([&] {
    if (!token.empty()) ::setenv("ASYNCOPS_TOKEN", token.c_str(), 1);
    if (!cacert.empty()) ::setenv("ASYNCOPS_CACERT", cacert.c_str(), 1);
  });

  int result = exit_code::ok;

  UpOptions up;
  auto* up_cmd = app.add_subcommand("up", "Run asyncopsd and N workers on the embedded default");
  up_cmd->add_option("--data-dir", up.data_dir, "Data dir (default $ASYNCOPS_DATA_DIR, $XDG_DATA_HOME/asyncops or ~/.local/share/asyncops)");
  up_cmd->add_option("--listen", up.listen, "HTTP address HOST:PORT")->capture_default_str();
  up_cmd->add_option("--workers", up.workers, "Number of workers")->capture_default_str()->check(CLI::Range(0, 256));
  up_cmd->add_option("--service", up.service, "Service the workers run")->capture_default_str();
  up_cmd->add_option("--sync", up.sync, "Store durability: normal or full")
      ->capture_default_str()
      ->check(CLI::IsMember({"normal", "full"}));
  up_cmd->add_option("--routes", up.routes, "Route table JSON file")->check(CLI::ExistingFile);
  up_cmd->footer("Example:\n  asyncops up --workers 4\n  curl -i -X POST localhost:8080/users -H 'Content-Type: application/json' -d '{\"email\":\"a@example.com\",\"name\":\"A\"}'");
  up_cmd->callback([&] { result = cmd_up(g, up); });

  SubmitOptions sub;
  auto* sub_cmd = app.add_subcommand("submit", "Submit a command: METHOD PATH [--data JSON|@file] [--wait]");
  sub_cmd->add_option("METHOD", sub.method, "POST, PUT, PATCH or DELETE")->required();
  sub_cmd->add_option("PATH", sub.path, "Request path, e.g. /users")->required();
  sub_cmd->add_option("-d,--data", sub.data, "JSON body, or @file, or @- for stdin");
  sub_cmd->add_flag("-w,--wait", sub.wait, "Wait for the operation to end; the exit code tells how it ended");
  sub_cmd->add_option("--timeout", sub.timeout_s, "With --wait: give up after this many seconds (exit 5)")
      ->check(CLI::NonNegativeNumber);
  sub_cmd->add_option("--idempotency-key", sub.idempotency_key, "Idempotency-Key header");
  sub_cmd->footer("Examples:\n  asyncops submit POST /users -d '{\"email\":\"a@example.com\",\"name\":\"A\"}' --wait\n  asyncops submit DELETE /users/0190c3e2-... --wait --timeout 10");
  sub_cmd->callback([&] { result = cmd_submit(g, sub); });

  std::string op_id;
  auto* get_cmd = app.add_subcommand("get", "Show one operation");
  get_cmd->add_option("OP_ID", op_id, "Operation id")->required();
  get_cmd->footer("Example:\n  asyncops get 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f --json");
  get_cmd->callback([&] { result = cmd_get(g, op_id); });

  ListOptions list;
  auto* list_cmd = app.add_subcommand("list", "List operations, newest first");
  list_cmd->add_option("--state", list.state, "Only this state")
      ->check(CLI::IsMember({"pending", "processing", "completed", "rejected", "failed", "canceled"}));
  list_cmd->add_option("--name", list.name, "Only this command name, e.g. create_user");
  list_cmd->add_option("--since", list.since, "Only operations created at or after this RFC 3339 time");
  list_cmd->add_option("--limit", list.limit, "Page size")->capture_default_str()->check(CLI::Range(1, 1000));
  list_cmd->add_option("--cursor", list.cursor, "Continue from a previous page's cursor");
  list_cmd->footer("Example:\n  asyncops list --state rejected --name create_user -o jsonl");
  list_cmd->callback([&] { result = cmd_list(g, list); });

  double watch_timeout = 0;
  auto* watch_cmd = app.add_subcommand("watch", "Print each change of one operation as it happens; the exit code tells how it ended");
  watch_cmd->add_option("OP_ID", op_id, "Operation id")->required();
  watch_cmd->add_option("--timeout", watch_timeout, "Give up after this many seconds (exit 5)")
      ->check(CLI::NonNegativeNumber);
  watch_cmd->footer("Examples:\n  asyncops watch 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f\n  asyncops watch OP_ID -o jsonl | jq .state");
  watch_cmd->callback([&] { result = cmd_watch(g, op_id, watch_timeout); });

  std::string tail_state, tail_name;
  auto* tail_cmd = app.add_subcommand("tail", "Follow every operation live (a live board on a TTY, JSON lines into a pipe)");
  tail_cmd->add_option("--state", tail_state, "Only changes into this state")
      ->check(CLI::IsMember({"pending", "processing", "completed", "rejected", "failed", "canceled"}));
  tail_cmd->add_option("--name", tail_name, "Only this command name");
  tail_cmd->footer("Examples:\n  asyncops tail\n  asyncops tail --state rejected | jq -r .code");
  tail_cmd->callback([&] { result = cmd_tail(g, tail_state, tail_name); });

  auto* cancel_cmd = app.add_subcommand("cancel", "Cancel an operation: at once if no worker has it, else best effort");
  cancel_cmd->add_option("OP_ID", op_id, "Operation id")->required();
  cancel_cmd->footer("Example:\n  asyncops cancel 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f && asyncops watch 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
  cancel_cmd->callback([&] { result = cmd_cancel(g, op_id); });

  auto* workers_cmd = app.add_subcommand("workers", "List live workers: service, host, pid, in-flight, last heartbeat");
  workers_cmd->footer("Example:\n  asyncops workers -o json");
  workers_cmd->callback([&] { result = cmd_workers(g); });

  auto* store_cmd = app.add_subcommand("store", "Work on the store file directly (the daemon may be running or not)");
  store_cmd->require_subcommand(1);
  std::string store_dir, older_than = "7d";
  store_cmd->add_option("--data-dir", store_dir, "Data dir holding asyncops.db (default as for up)");
  auto* prune_cmd = store_cmd->add_subcommand("prune", "Forget finished operations older than --older-than");
  prune_cmd->add_option("--older-than", older_than, "Age, e.g. 24h or 7d (default 7d)")
      ->check([](const std::string& v) {
        std::chrono::milliseconds d;
        return parse_duration(v, &d) ? std::string() : "'" + v + "' is not a duration like 30s, 5m, 24h or 7d";
      });
  prune_cmd->footer("Example:\n  asyncops store prune --older-than 24h");
  prune_cmd->callback([&] {
    std::chrono::milliseconds d;
    parse_duration(older_than, &d);
    result = cmd_store_prune(g, store_dir, d);
  });

  add_token_commands(app, result);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "asyncops: " << e.what() << " (try --help)" << std::endl;
    return exit_code::usage;
  }
  return result;
}

}  // namespace asyncops
