#include "daemon/access.h"

#include <CLI/CLI.hpp>

namespace asyncops {

void add_access_options(CLI::App& app, AccessConfig& cfg) {
  app.add_option("--tokens", cfg.tokens_file,
                 "API tokens file (sha256:<hex> PRINCIPAL ROLE per line; default DATA_DIR/tokens). "
                 "Without tokens only loopback clients are served")
      ->envname("ASYNCOPS_TOKENS");
  app.add_option("--rate-limit", cfg.rate_limit, "Requests per principal, e.g. 100/s (default: off)")
      ->envname("ASYNCOPS_RATE_LIMIT");
  app.add_option("--max-header-bytes", cfg.max_header_bytes, "Largest request header block (431 beyond)")
      ->check(CLI::Range(size_t{256}, size_t{8192}));
  app.add_option("--max-url-bytes", cfg.max_url_bytes, "Longest request target (414 beyond)")
      ->check(CLI::Range(size_t{64}, size_t{8192}));
  app.add_option("--max-fields", cfg.max_fields, "Most JSON values in a body (413 beyond)")
      ->check(CLI::Range(size_t{1}, size_t{10000000}));
  app.add_option("--max-string", cfg.max_string_bytes, "Longest JSON string in a body, in bytes (422 beyond)")
      ->check(CLI::Range(size_t{1}, size_t{64} << 20));
  app.add_option("--tls-cert", cfg.tls_cert, "PEM certificate: serve HTTPS (with --tls-key)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", cfg.tls_key, "PEM private key for --tls-cert")->check(CLI::ExistingFile);
  app.add_option("--curve-secret-key-file", cfg.curve_secret_key_file,
                 "The daemon's ZeroMQ CURVE secret key (Z85, from `asyncops keygen`): worker sockets "
                 "become CURVE servers")
      ->check(CLI::ExistingFile);
  app.add_option("--curve-allowed-keys", cfg.curve_allowed_keys,
                 "File of worker CURVE public keys (Z85, one a line) allowed to connect")
      ->check(CLI::ExistingFile);
}

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

}  // namespace asyncops
