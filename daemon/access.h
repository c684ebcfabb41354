#pragma once
// The daemon's access and trust settings (issue 7), kept apart from
// daemon.cpp so that they merge easily: tokens, limits, TLS and CURVE.
#include <cstddef>
#include <string>

#include "shared/result.h"

namespace CLI {
class App;
}

namespace asyncops {

struct AccessConfig {
  std::string tokens_file;  // "" : DATA_DIR/tokens
  std::string rate_limit;   // "N/s" per principal; "" or "0": off
  size_t max_header_bytes = 8192;
  size_t max_url_bytes = 2048;
  size_t max_fields = 256;
  size_t max_string_bytes = 65536;
  std::string tls_cert, tls_key;
  std::string curve_secret_key_file;  // the daemon's CURVE secret key (Z85); "" : no CURVE
  std::string curve_allowed_keys;     // file of worker public keys (Z85), one a line
};

// Adds --tokens, --rate-limit, --max-header-bytes, --max-url-bytes,
// --max-fields, --max-string, --tls-cert, --tls-key,
// --curve-secret-key-file and --curve-allowed-keys.
void add_access_options(CLI::App& app, AccessConfig& cfg);

// Whether a --listen host is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

}  // namespace asyncops
