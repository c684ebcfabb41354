#pragma once
#include <string>

#include "shared/result.h"

namespace asyncops {

// The embedded default data dir: $ASYNCOPS_DATA_DIR, else
// $XDG_DATA_HOME/asyncops, else ~/.local/share/asyncops.
std::string default_data_dir();

// Creates dir and its parents with the given mode for any it creates, and
// narrows dir itself to mode if it existed with a wider one (a data dir made
// beforehand at 0755 becomes 0700). An error names the directory and the
// reason.
Status make_dirs(const std::string& dir, unsigned mode = 0700);

// The default ZeroMQ endpoints inside a data dir.
std::string default_commands_endpoint(const std::string& data_dir, const std::string& service);
std::string default_events_endpoint(const std::string& data_dir);
std::string default_control_endpoint(const std::string& data_dir);

// The daemon writes its URL to this file once it accepts requests.
std::string url_file(const std::string& data_dir);

}  // namespace asyncops
