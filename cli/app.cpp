#include "cli/app.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/current.h"
#include "cli/exit_codes.h"
#include "cli/programs.h"
#include "cli/suggest.h"
#include "shared/config.h"
#include "cli/token_commands.h"
#include "shared/duration.h"
#include "shared/state.h"
#include "store/wal_batching.h"

namespace asyncops {
namespace {

bool given(const std::vector<std::string>& args, std::initializer_list<const char*> flags) {
  for (const auto& a : args) {
    if (a == "--") break;
    for (const char* f : flags) {
      std::string fs(f);
      if (a == fs || a.rfind(fs + "=", 0) == 0 || (fs.size() == 2 && a.rfind(fs, 0) == 0 && a.size() > 2)) return true;
    }
  }
  return false;
}

// The [cli] section of the config file fills what no flag or environment
// variable set. An error is one line naming the bad key.
Status apply_cli_config(GlobalOptions& g, const std::vector<std::string>& args) {
  auto file = load_program_config(g.config_path);
  if (!file) return Error{file.error()};
  g.config_path = file->path;
  g.config_found = file->found;
  std::map<std::string, ConfigEntry> keys;
  if (const auto* entries = file->section("cli")) {
    for (const auto& e : *entries) {
      std::string where = "config " + g.config_path + ":" + std::to_string(e.line) + ": ";
      if (e.key == "url") {
        if (e.value.rfind("http://", 0) != 0 && e.value.rfind("https://", 0) != 0) {
          return Error{where + "url = " + e.value + ": expected an http:// or https:// URL"};
        }
      } else if (e.key == "output") {
        if (e.value != "table" && e.value != "json" && e.value != "jsonl") {
          return Error{where + "output = " + e.value + ": expected table, json or jsonl"};
        }
      } else if (e.key == "data_dir") {
        if (e.value.empty()) return Error{where + "data_dir is empty"};
      } else {
        return Error{where + "unknown key '" + e.key + "' in [cli] (known: url, output, data_dir)"};
      }
      keys[e.key] = e;
    }
  }
  auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v;
  };
  // data_dir: the global --data-dir, or a command's own (up, stats, store, token)
  std::string dir_src;
  if (keys.count("data_dir")) g.file_data_dir = keys["data_dir"].value;
  std::string dd = g.global_data_dir;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--data-dir") dd = args[i + 1];
  }
  bool dir_given = true;
  if (given(args, {"--data-dir"})) dir_src = "flag";
  else if (env("ASYNCOPS_DATA_DIR")) dir_src = "env";
  else if (keys.count("data_dir")) dir_src = "file";
  else {
    dir_given = false;
    // The daemon `asyncops up` runs (issue 16): its data dir, for stats,
    // store and token, when nothing else names one.
    if (auto cur = read_current_daemon(); cur && !cur->data_dir.empty()) {
      g.current_data_dir = cur->data_dir;
      dir_src = "current";
    } else dir_src = "default";
  }
  std::string dir = g.data_dir(dd);
  // url
  std::string url_src;
  if (given(args, {"--url"})) {
    url_src = "flag";
    g.repeat_args = {"--url", g.url};
  } else if (env("ASYNCOPS_URL")) url_src = "env";
  else if (keys.count("url")) {
    g.url = keys["url"].value;
    url_src = "file";
  } else {
    // Found, in order: the URL file of a data dir given by flag, env or
    // config; the pointer `asyncops up` leaves; the default data dir's URL
    // file; the default address.
    auto cur = dir_given ? std::nullopt : read_current_daemon();
    std::string from_file = read_url_file(dir);
    if (!from_file.empty()) {
      g.url = from_file;
      url_src = "url_file";
    } else if (cur) {
      g.url = cur->url;
      url_src = "current";
    } else {
      g.url = "http://127.0.0.1:8080";
      url_src = "default";
    }
  }
  g.url_source = url_src;
  g.settings.push_back({"url", g.url, url_src});
  // output
  std::string src;
  if (given(args, {"-o", "--output", "--json"})) src = "flag";
  else if (env("ASYNCOPS_OUTPUT")) src = "env";
  else if (keys.count("output")) {
    g.output = keys["output"].value;
    src = "file";
  } else src = "default";
  g.settings.push_back({"output", g.json ? "json" : g.output.empty() ? "table" : g.output, src});
  if (src == "flag") g.repeat_args.insert(g.repeat_args.end(), {"-o", g.json ? "json" : g.output});
  g.settings.push_back({"data_dir", dir, dir_src});
  return Status::success();
}

// A whole number in [lo, hi], with an error that says so (CLI11's own
// messages are "Could not convert" and a range with 300 digits).
CLI::Validator whole_number(long lo, long hi) {
  return CLI::Validator(
      [lo, hi](std::string& v) {
        char* end = nullptr;
        errno = 0;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0' || errno != 0 || n < lo || n > hi) {
          return "'" + v + "' is not a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
        }
        return std::string();
      },
      "N");
}

CLI::Validator seconds() {
  return CLI::Validator(
      [](std::string& v) {
        char* end = nullptr;
        double d = std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || !(d >= 0) || d > 1e9) {
          return "'" + v + "' is not a number of seconds, 0 or more (0: no limit)";
        }
        return std::string();
      },
      "SECONDS");
}

// --wait, --timeout and --idempotency-key: submit and retry both send a
// command, and take the same three options for it.
void add_send_options(CLI::App* cmd, const std::string& wait_help, bool& wait, double& timeout_s,
                      std::string& idempotency_key) {
  cmd->add_flag("-w,--wait", wait, wait_help);
  cmd->add_option("--timeout", timeout_s, "With --wait: give up after this many seconds (exit 5)")->check(seconds());
  cmd->add_option("--idempotency-key", idempotency_key, "Idempotency-Key header");
}

// Global options that take a value: their value is not a command word.
bool global_takes_value(const std::string& a) {
  return a == "--url" || a == "-o" || a == "--output" || a == "--config" || a == "--token" || a == "--cacert" ||
         a == "--data-dir";
}

// The words naming the command: the first word that is not a global option
// or its value, and (for commands with subcommands) the one after it.
std::vector<std::string> command_words(const std::vector<std::string>& args) {
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size() && words.size() < 3; ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (!a.empty() && a[0] == '-') {
      if (global_takes_value(a) && a.find('=') == std::string::npos) ++i;
      continue;
    }
    words.push_back(a);
  }
  return words;
}

std::vector<std::string> subcommand_names(CLI::App* app) {
  std::vector<std::string> names;
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

// After a parse error: if a command word is not a command, say which one
// was probably meant. "" if the words are all commands.
std::string unknown_command(CLI::App& app, const std::vector<std::string>& args) {
  CLI::App* current = &app;
  std::string path = "asyncops";
  for (const auto& w : command_words(args)) {
    auto names = subcommand_names(current);
    if (names.empty()) break;
    if (std::find(names.begin(), names.end(), w) != names.end()) {
      current = current->get_subcommand(w);
      path += " " + w;
      if (w == "daemon" || w == "worker") break;
      continue;
    }
    std::string near = closest_name(w, names);
    std::string parent = path.substr(std::string("asyncops").size());  // "" or " store"
    std::string msg = "unknown command '" + w + "'" + (parent.empty() ? "" : " for asyncops" + parent);
    if (!near.empty()) msg += "; did you mean 'asyncops" + parent + " " + near + "'?";
    return msg + " (asyncops help" + parent + " lists them)";
  }
  return "";
}

// asyncops help [COMMAND [SUBCOMMAND]]: the --help text of that command.
int print_help(CLI::App& app, const std::vector<std::string>& words) {
  CLI::App* current = &app;
  std::vector<std::string> path;
  for (size_t i = 1; i < words.size(); ++i) {
    auto names = subcommand_names(current);
    if (std::find(names.begin(), names.end(), words[i]) == names.end()) {
      std::string near = closest_name(words[i], names);
      print_error("no command '" + words[i] + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?"));
      return exit_code::usage;
    }
    current = current->get_subcommand(words[i]);
    path.push_back(words[i]);
  }
  std::string parents;  // CLI11 prints "Usage: PARENTS NAME"
  if (!path.empty()) parents = "asyncops";
  for (size_t i = 0; i + 1 < path.size(); ++i) parents += " " + path[i];
  std::cout << current->help(parents) << std::flush;
  return exit_code::ok;
}

}  // namespace

int cli_main(int argc, char** argv) {
  install_wal_batching();  // `asyncops store` writes the store as the daemon does
  CLI::App app{"asyncops: submit commands to asyncopsd, follow operations, run the system"};
  app.set_version_flag("--version", std::string("asyncops ") + "0.1.0");
  app.require_subcommand(1);
  app.fallthrough();  // global flags work after the subcommand too: `asyncops list --json`
  app.footer(
      "Exit codes: 0 ok/completed, 1 error, 2 usage, 3 rejected, 4 failed or canceled,\n"
      "5 timed out waiting, 6 daemon unreachable. See asyncops(1).");

  GlobalOptions g;
  app.add_option("--url", g.url,
                 "Daemon URL (env ASYNCOPS_URL; default: the URL file of the data dir, else the daemon `asyncops up` "
                 "runs, else http://127.0.0.1:8080)")
      ->envname("ASYNCOPS_URL");
  app.add_option("--data-dir", g.global_data_dir,
                 "Data dir (env ASYNCOPS_DATA_DIR; default: that of the daemon `asyncops up` runs, else "
                 "$XDG_DATA_HOME/asyncops or ~/.local/share/asyncops)");
  app.add_option("-o,--output", g.output, "Output format: table, json or jsonl (env ASYNCOPS_OUTPUT)")
      ->envname("ASYNCOPS_OUTPUT")
      ->check(CLI::IsMember({"table", "json", "jsonl"}));
  app.add_flag("--json", g.json, "Same as -o json");
  app.add_option("--config", g.config_path,
                 "Configuration file (default $ASYNCOPS_CONFIG, $XDG_CONFIG_HOME/asyncops/asyncops.conf or "
                 "~/.config/asyncops/asyncops.conf); see asyncops.conf(5)");
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

  std::function<int()> run;  // the chosen command, run once the configuration is complete

  UpOptions up;
  auto* up_cmd = app.add_subcommand(
      "up", "Run asyncopsd and its workers: N of --service, or those of the config's [service.NAME] sections");
  up_cmd->add_option("--data-dir", up.data_dir, "Data dir (default $ASYNCOPS_DATA_DIR, $XDG_DATA_HOME/asyncops or ~/.local/share/asyncops)");
  up_cmd->add_option("--listen", up.listen, "HTTP address HOST:PORT")->capture_default_str();
  up_cmd->add_option("--workers", up.workers, "Number of workers (without [service.NAME] sections)")->capture_default_str()->check(whole_number(0, 256));
  up_cmd->add_option("--service", up.service, "Service the workers run (without [service.NAME] sections)")->capture_default_str();
  up_cmd->add_option("--sync", up.sync, "Store durability: normal or full")
      ->capture_default_str()
      ->check(CLI::IsMember({"normal", "full"}));
  up_cmd->add_option("--routes", up.routes, "Route table JSON file")->check(CLI::ExistingFile);
  up_cmd->footer("Examples:\n  asyncops up --config examples/orders/asyncops.conf\n  asyncops up --workers 4\n  curl -i -X POST localhost:8080/users -H 'Content-Type: application/json' -d '{\"email\":\"a@example.com\",\"name\":\"A\"}'");
  up_cmd->callback([&] { run = [&] { return cmd_up(g, up); }; });

  SubmitOptions sub;
  auto* sub_cmd = app.add_subcommand("submit", "Submit a command: METHOD PATH [--data JSON|@file] [--wait]");
  sub_cmd->add_option("METHOD", sub.method, "POST, PUT, PATCH or DELETE")->required();
  sub_cmd->add_option("PATH", sub.path, "Request path, e.g. /users")->required();
  sub_cmd->add_option("-d,--data", sub.data, "JSON body, or @file, or @- for stdin");
  add_send_options(sub_cmd, "Wait for the operation to end; the exit code tells how it ended", sub.wait,
                   sub.timeout_s, sub.idempotency_key);
  sub_cmd->footer("Examples:\n  asyncops submit POST /users -d '{\"email\":\"a@example.com\",\"name\":\"A\"}' --wait\n  asyncops submit DELETE /users/0190c3e2-... --wait --timeout 10");
  sub_cmd->callback([&] { run = [&] { return cmd_submit(g, sub); }; });

  std::string op_id;
  auto* get_cmd = app.add_subcommand("get", "Show one operation");
  get_cmd->add_option("OP_ID", op_id, "Operation id")->required();
  get_cmd->footer("Example:\n  asyncops get 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f --json");
  get_cmd->callback([&] { run = [&] { return cmd_get(g, op_id); }; });

  RetryOptions retry;
  auto* retry_cmd = app.add_subcommand("retry", "Submit a finished operation's command again, as a new operation linked by retry_of");
  retry_cmd->add_option("OP_ID", retry.ref, "Operation id (or a unique prefix, /operations/ID, its URL)")->required();
  add_send_options(retry_cmd, "Wait for the new operation to end; the exit code tells how it ended", retry.wait,
                   retry.timeout_s, retry.idempotency_key);
  retry_cmd->footer("Examples:\n  asyncops retry 0190c3e2-7a1b --wait\n  asyncops get NEW_ID -o json | jq .retry_of");
  retry_cmd->callback([&] { run = [&] { return cmd_retry(g, retry); }; });

  ListOptions list;
  auto* list_cmd = app.add_subcommand("list", "List operations, newest first");
  list_cmd->add_option("--state", list.state, "Only this state")
      ->check(CLI::IsMember(state_names()));
  list_cmd->add_option("--name", list.name, "Only this command name, e.g. create_user");
  list_cmd->add_option("--since", list.since, "Only operations created at or after this time: a duration back from now (2h, 7d) or RFC 3339");
  list_cmd->add_option("--until", list.until, "Only operations created at or before this time: a duration back from now (10m) or RFC 3339");
  list_cmd->add_option("--code", list.code, "Only operations that ended with this code, e.g. email_in_use");
  list_cmd->add_option("--owner", list.owner, "Only this principal's operations (an admin's token)");
  list_cmd->add_option("--resource", list.resource, "Only operations on this resource, e.g. /users/ID (/users/: all users)");
  list_cmd->add_option("--limit", list.limit, "Page size")->capture_default_str()->check(whole_number(1, 1000));
  list_cmd->add_option("--cursor", list.cursor, "Continue from a previous page's cursor (with the same filters)");
  list_cmd->add_flag("--all", list.all, "Follow every page (--limit is then the page size)");
  list_cmd->footer("When more pages follow, the command for the next one is printed on stderr as \"more: …\".\n"
                   "Examples:\n  asyncops list --state rejected --name create_user -o jsonl\n  asyncops list --since 2h --all | wc -l\n"
                   "  asyncops list --code email_in_use --until 1h\n  asyncops list --resource /users/0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
  list_cmd->callback([&] { run = [&] { return cmd_list(g, list); }; });

  double watch_timeout = 0;
  auto* watch_cmd = app.add_subcommand("watch", "Print each change of one operation as it happens; the exit code tells how it ended");
  watch_cmd->add_option("OP_ID", op_id, "Operation id")->required();
  watch_cmd->add_option("--timeout", watch_timeout, "Give up after this many seconds (exit 5)")
      ->check(seconds());
  watch_cmd->footer("Examples:\n  asyncops watch 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f\n  asyncops watch OP_ID -o jsonl | jq .state");
  watch_cmd->callback([&] { run = [&] { return cmd_watch(g, op_id, watch_timeout); }; });

  std::string tail_state, tail_name;
  auto* tail_cmd = app.add_subcommand("tail", "Follow every operation live (a live board on a TTY, JSON lines into a pipe)");
  tail_cmd->add_option("--state", tail_state, "Only changes into this state")
      ->check(CLI::IsMember(state_names()));
  tail_cmd->add_option("--name", tail_name, "Only this command name");
  tail_cmd->footer("Examples:\n  asyncops tail\n  asyncops tail --state rejected | jq -r .code");
  tail_cmd->callback([&] { run = [&] { return cmd_tail(g, tail_state, tail_name); }; });

  BulkOptions cancel;
  auto* cancel_cmd = app.add_subcommand(
      "cancel", "Cancel operations: at once if no worker has them, else best effort; by ids or by filters");
  cancel_cmd->add_option("OP_ID", cancel.refs, "Operation ids (or unique prefixes, /operations/ID, URLs)");
  cancel_cmd->add_option("--state", cancel.state, "Choose the unfinished operations in this state")
      ->check(CLI::IsMember({"pending", "processing"}));
  cancel_cmd->add_option("--name", cancel.name, "Choose the unfinished operations of this command name");
  cancel_cmd->add_option("--older-than", cancel.older_than, "With the filters: only those created longer ago than this, e.g. 10m");
  cancel_cmd->add_option("--owner", cancel.owner, "Choose the unfinished operations of this principal (an admin's token)");
  cancel_cmd->add_option("--resource", cancel.resource, "Choose the unfinished operations on this resource (/users/: all users)");
  cancel_cmd->add_flag("-y,--yes", cancel.yes, "Do not ask for a confirmation on a terminal");
  cancel_cmd->footer("Examples:\n  asyncops cancel 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f && asyncops watch 0190c3e2-7a1b\n"
                     "  asyncops cancel --state pending --name create_user --older-than 10m --yes");
  cancel_cmd->callback([&] { run = [&] { return cmd_cancel(g, cancel); }; });

  BulkOptions forget;
  auto* forget_cmd = app.add_subcommand("forget", "Forget finished operations: DELETE /operations/{id} with their history");
  forget_cmd->add_option("OP_ID", forget.refs, "Operation ids (or unique prefixes, /operations/ID, URLs)")->required();
  forget_cmd->add_flag("-y,--yes", forget.yes, "Do not ask for a confirmation on a terminal (more than one id)");
  forget_cmd->footer("Example:\n  asyncops forget 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f");
  forget_cmd->callback([&] { run = [&] { return cmd_forget(g, forget); }; });

  auto* workers_cmd = app.add_subcommand("workers", "List live workers: service, host, pid, in-flight, last heartbeat");
  workers_cmd->footer("Example:\n  asyncops workers -o json");
  workers_cmd->callback([&] { run = [&] { return cmd_workers(g); }; });

  auto* store_cmd = app.add_subcommand("store", "Work on the store file directly (the daemon may be running or not)");
  store_cmd->require_subcommand(1);
  std::string store_dir, older_than = "7d";
  store_cmd->add_option("--data-dir", store_dir, "Data dir holding asyncops.db (default as for up)");
  auto* prune_cmd = store_cmd->add_subcommand("prune", "Forget finished operations older than --older-than");
  prune_cmd->add_option("--older-than", older_than, "Age, e.g. 24h or 7d (default 7d)")
      ->check([](const std::string& v) {
        auto d = parse_duration(v);
        return d ? std::string() : d.error();
      });
  prune_cmd->footer("Example:\n  asyncops store prune --older-than 24h");
  prune_cmd->callback([&] {
    run = [&] {
      auto d = parse_duration(older_than);  // the option's check refused anything else already
      if (!d) {
        print_error("--older-than: " + d.error());
        return exit_code::usage;
      }
      return cmd_store_prune(g, store_dir, d.value());
    };
  });

  auto* info_cmd = store_cmd->add_subcommand("info", "Path, file sizes, row counts, schema version, oldest and newest operation");
  info_cmd->footer("Examples:\n  asyncops store info\n  asyncops store info --data-dir /var/lib/asyncops -o json");
  info_cmd->callback([&] { run = [&] { return cmd_store_info(g, store_dir); }; });

  ListOptions sops;
  auto* ops_cmd = store_cmd->add_subcommand("ops", "List operations from the file, newest first (like list, without the daemon)");
  ops_cmd->add_option("--state", sops.state, "Only this state")
      ->check(CLI::IsMember(state_names()));
  ops_cmd->add_option("--name", sops.name, "Only this command name, e.g. create_user");
  ops_cmd->add_option("--since", sops.since, "Only operations created at or after this RFC 3339 time");
  ops_cmd->add_option("--limit", sops.limit, "How many")->capture_default_str()->check(whole_number(1, 1000000));
  ops_cmd->footer("Examples:\n  asyncops store ops --state pending --limit 100\n  asyncops store ops --name create_user -o jsonl");
  ops_cmd->callback([&] { run = [&] { return cmd_store_ops(g, store_dir, sops); }; });

  std::string hist_id;
  auto* hist_cmd = store_cmd->add_subcommand(
      "history", "Every recorded change of one operation, oldest first (GET /operations/{id}/history when a daemon is known)");
  hist_cmd->add_option("OP_ID", hist_id, "Operation id")->required();
  hist_cmd->footer("Example:\n  asyncops store history 0190c3e2-7a1b-7c3d-8e4f-5a6b7c8d9e0f -o json");
  hist_cmd->callback([&] { run = [&] { return cmd_store_history(g, store_dir, hist_id); }; });

  auto* vacuum_cmd = store_cmd->add_subcommand("vacuum", "Rebuild the file to reclaim space (only while asyncopsd is stopped)");
  vacuum_cmd->footer("Example:\n  asyncops store prune --older-than 30d && asyncops store vacuum\n"
                     "Refused (exit 1) while asyncopsd holds DATA_DIR/asyncopsd.pid.");
  vacuum_cmd->callback([&] { run = [&] { return cmd_store_vacuum(g, store_dir); }; });

  auto* export_cmd = store_cmd->add_subcommand("export", "Every operation with its history, one JSON object per line, oldest first");
  export_cmd->footer("Examples:\n  asyncops store export > ops.jsonl\n  asyncops store export | grep -c '\"state\":\"rejected\"'");
  export_cmd->callback([&] { run = [&] { return cmd_store_export(g, store_dir); }; });

  auto* check_cmd = store_cmd->add_subcommand("check", "SQLite integrity check plus the store's own invariants; exit 1 on any problem");
  check_cmd->footer("Example:\n  asyncops store check || echo 'store damaged: see the lines above'");
  check_cmd->callback([&] { run = [&] { return cmd_store_check(g, store_dir); }; });

  std::string stats_dir;
  auto* stats_cmd = app.add_subcommand("stats", "Counts by state and command, backlog, oldest pending, recent rates (GET /stats, else the store file)");
  stats_cmd->add_option("--data-dir", stats_dir, "Data dir holding asyncops.db, read when no daemon answers (default as for up)");
  stats_cmd->footer("Examples:\n  asyncops stats\n  asyncops stats -o json | jq .backlog");
  stats_cmd->callback([&] { run = [&] { return cmd_stats(g, stats_dir); }; });

  auto* version_cmd = app.add_subcommand("version", "Print the version (-o json: {\"version\": ...})");
  version_cmd->footer("Examples:\n  asyncops version\n  asyncops version -o json");
  version_cmd->callback([&] { run = [&] { return cmd_version(g); }; });

  bool config_daemon = false;
  auto* config_cmd = app.add_subcommand("config", "Show the effective configuration and where each value came from");
  config_cmd->add_flag("--daemon", config_daemon, "Show what asyncopsd would use instead (runs asyncopsd --print-config)");
  config_cmd->footer("Precedence: flag > ASYNCOPS_* environment > config file > default.\n"
                     "Examples:\n  asyncops config\n  asyncops config --daemon -o json");
  config_cmd->callback([&] { run = [&] { return cmd_config(g, config_daemon); }; });

  // daemon and worker: run the sibling programs with the remaining arguments.
  for (const char* which : {"daemon", "worker"}) {
    bool is_daemon = std::string(which) == "daemon";
    auto* c = app.add_subcommand(which, is_daemon ? "Run asyncopsd here, passing every argument through (asyncops daemon --help: its flags)"
                                                  : "Run asyncops-worker here, passing every argument through (asyncops worker --help: its flags)");
    c->prefix_command();
    c->allow_extras();
    c->fallthrough(false);
    c->set_help_flag();  // --help goes to the program
    c->footer(is_daemon ? "Examples:\n  asyncops daemon --listen 127.0.0.1:8080\n  asyncops daemon --help"
                        : "Examples:\n  asyncops worker --service users\n  asyncops worker --help");
    c->callback([&, c, is_daemon] {
      std::vector<std::string> rest = c->remaining();
      run = [rest, is_daemon] { return exec_program(is_daemon ? "asyncopsd" : "asyncops-worker", rest); };
    });
  }

  add_token_commands(app, g, run);

  std::vector<std::string> args(argv + 1, argv + argc);
  app.add_subcommand("help",
                     "Show the help of asyncops or of one command: asyncops help [COMMAND [SUBCOMMAND]]; "
                     "asyncops help --man [PAGE]: the man page")
      ->allow_extras();  // handled below, before parsing
  if (auto words = command_words(args); !words.empty() && words[0] == "help") {
    // asyncops help --man [PAGE]: the man page, from the build tree too.
    if (std::find(args.begin(), args.end(), "--man") != args.end()) {
      return show_man_page(words.size() > 1 ? words[1] : "asyncops");
    }
    return print_help(app, words);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (auto unknown = unknown_command(app, args); !unknown.empty()) {
      print_error(unknown);
      return exit_code::usage;
    }
    std::cerr << "asyncops: " << e.what() << " (try --help)" << std::endl;
    return exit_code::usage;
  }
  if (auto applied = apply_cli_config(g, args); !applied) {
    print_error(applied.error());
    return exit_code::usage;
  }
  return run ? run() : exit_code::ok;
}

}  // namespace asyncops
