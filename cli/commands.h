#pragma once
// One function per CLI command. Each returns the process exit code and
// reports errors as one line on stderr (see exit_codes.h).
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "cli/output.h"

namespace asyncops {

// One effective setting and where it came from (asyncops config).
struct SettingSource {
  std::string key;
  std::string value;
  std::string source;  // default, url_file, file, env or flag
};

struct GlobalOptions {
  std::string url;
  std::string output;  // -o
  bool json = false;   // --json
  std::string config_path;    // --config, else the default path
  bool config_found = false;  // the file exists and was read
  std::string global_data_dir;   // the global --data-dir
  std::string file_data_dir;     // [cli] data_dir from the config file
  std::string current_data_dir;  // that of the daemon `asyncops up` runs (its pointer)
  // Where url came from: flag, env, file, url_file, current or default.
  std::string url_source;
  std::vector<SettingSource> settings;  // url, output, data_dir: for `asyncops config`
  // Global flags given on the command line that a printed follow-up command
  // must repeat (--url U, -o F), e.g. list's "more:" hint.
  std::vector<std::string> repeat_args;
  Output out() const { return Output::resolve(output, json); }
  // The command's --data-dir, else the global one, else $ASYNCOPS_DATA_DIR,
  // else [cli] data_dir, else the one of the daemon `asyncops up` runs, else
  // the embedded default ($XDG_DATA_HOME/asyncops or ~/.local/share/asyncops).
  std::string data_dir(const std::string& flag) const;
  // The user named the daemon (--url, ASYNCOPS_URL, [cli] url): commands
  // that can also read the store file (stats, store history) must then ask
  // it, and fail if they cannot.
  bool url_named() const { return url_source == "flag" || url_source == "env" || url_source == "file"; }
  // A daemon is known: named, or found through a data dir's URL file or the
  // pointer `asyncops up` leaves (not the bare default address).
  bool daemon_known() const { return url_named() || url_source == "url_file" || url_source == "current"; }
};

struct SubmitOptions {
  std::string method;
  std::string path;
  std::string data;  // JSON text, @file, or @- for stdin
  bool wait = false;
  double timeout_s = 0;  // 0: no limit
  std::string idempotency_key;
};
int cmd_submit(const GlobalOptions& g, const SubmitOptions& o);

int cmd_get(const GlobalOptions& g, const std::string& op_id);

// asyncops retry ID: POST /operations/{id}/retry, the same command again as
// a new operation (retry_of links it to ID); --wait as for submit.
struct RetryOptions {
  std::string ref;  // an id, a unique prefix, /operations/ID or its URL
  bool wait = false;
  double timeout_s = 0;
  std::string idempotency_key;
};
int cmd_retry(const GlobalOptions& g, const RetryOptions& o);

struct ListOptions {
  std::string state;
  std::string name;
  std::string since;  // RFC 3339, or (list) a duration back from now
  std::string until;  // the same: created at or before
  std::string code;
  std::string owner;     // admin only (the daemon refuses others with 403)
  std::string resource;  // /users/ID, or /users/ for every user
  int limit = 20;
  std::string cursor;
  bool all = false;  // list --all: follow every page
};
int cmd_list(const GlobalOptions& g, const ListOptions& o);

struct UpOptions {
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  int workers = 2;
  std::string service = "users";
  std::string sync = "normal";
  std::string routes;
};
int cmd_up(const GlobalOptions& g, const UpOptions& o);

// cancel ID… | cancel --state S --name N [--older-than D], and forget ID….
struct BulkOptions {
  std::vector<std::string> refs;  // ids, prefixes, /operations/ID or URLs
  std::string state;              // cancel: choose by filters instead
  std::string name;
  std::string older_than;         // a duration: created before now minus this
  std::string owner;              // cancel: only this principal's (admin)
  std::string resource;           // cancel: only those on this resource (or under it, ending in /)
  bool yes = false;               // no confirmation on a terminal
};
int cmd_cancel(const GlobalOptions& g, const BulkOptions& o);
int cmd_forget(const GlobalOptions& g, const BulkOptions& o);
int cmd_workers(const GlobalOptions& g);
// Prunes terminal operations older than older_than from the store file
// directly (safe while the daemon runs: small transactions).
int cmd_store_prune(const GlobalOptions& g, const std::string& data_dir, std::chrono::milliseconds older_than);

int cmd_version(const GlobalOptions& g);
// asyncops config [--daemon]: the effective settings and their sources.
int cmd_config(const GlobalOptions& g, bool daemon);

// Read the store file directly (read-only but vacuum).
// store_file(data_dir): store/maintenance.h
// GET /stats when a daemon is known and answers (or --url is given), else
// the store file.
int cmd_stats(const GlobalOptions& g, const std::string& data_dir);
int cmd_store_info(const GlobalOptions& g, const std::string& data_dir);
int cmd_store_ops(const GlobalOptions& g, const std::string& data_dir, const ListOptions& o);
int cmd_store_history(const GlobalOptions& g, const std::string& data_dir, const std::string& op_id);
int cmd_store_vacuum(const GlobalOptions& g, const std::string& data_dir);
int cmd_store_export(const GlobalOptions& g, const std::string& data_dir);
int cmd_store_check(const GlobalOptions& g, const std::string& data_dir);

int cmd_watch(const GlobalOptions& g, const std::string& op_id, double timeout_s);
int cmd_tail(const GlobalOptions& g, const std::string& state, const std::string& name);

// Follows op_id's event stream until it ends, calling on_change for each
// change; falls back to long-polling if the stream breaks. Returns the exit
// code for the final state, or timed_out/unreachable/error.
int follow_operation(const GlobalOptions& g, const std::string& op_id, double timeout_s,
                     const std::function<void(const nlohmann::json&)>& on_change,
                     nlohmann::json* final_op);
// The one-line error for a wait that timed out on op: when it is still
// pending and no live worker serves its service (GET /workers), it says so.
std::string timed_out_message(const GlobalOptions& g, const std::string& op_id, const nlohmann::json& op);
// Ctrl-C and SIGTERM exit at once with exit_code, leaving the terminal tidy.
void install_interrupt_handler(int exit_code);

// Waits for op_id to end (long-polling), printing changes to stderr on a
// TTY. Returns the exit code for its final state, or timed_out/unreachable.
int wait_for_operation(const GlobalOptions& g, const std::string& op_id, double timeout_s,
                       nlohmann::json* final_op);

}  // namespace asyncops
