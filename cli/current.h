#pragma once
// The per-user pointer to the daemon `asyncops up` runs, so that a plain
// `asyncops list` in another shell finds it: $XDG_RUNTIME_DIR/asyncops/current,
// else $XDG_STATE_HOME/asyncops/current, else ~/.local/state/asyncops/current.
// Its lines: "url=URL", "data_dir=DIR", "pid=PID" (of `asyncops up`).
#include <optional>
#include <string>

#include "shared/result.h"

namespace asyncops {

struct CurrentDaemon {
  std::string url;
  std::string data_dir;
  long pid = 0;
};

std::string current_pointer_path();

// Writes the pointer atomically (temp file + rename), mode 0600.
Status write_current_daemon(const CurrentDaemon& d);

// The pointer, if there is one with a URL.
std::optional<CurrentDaemon> read_current_daemon();

// Removes the pointer only if it still names this daemon (d.url, d.data_dir
// and d.pid): a later `up` elsewhere may have replaced it.
void remove_current_daemon_if(const CurrentDaemon& d);

}  // namespace asyncops
