#pragma once
// The http kind: asyncops in front of an existing synchronous HTTP service
// (docs/protocol.md, "Services without C++").
//
// Each command becomes one request to `url`, whose path may use the route's
// params ({id}), with the route's method (from the command's origin) or the
// configured one. The body is the command's payload as JSON (none for GET,
// HEAD, or a DELETE whose payload is {}). Headers: Idempotency-Key and
// X-Request-Id (the request id), X-Asyncops-Command, X-Asyncops-Attempt.
//
//   2xx                        completed; a JSON object body is the representation
//                              (a DELETE: the resource is deleted)
//   4xx but 408, 425, 429      rejected; code = the problem+json `code`, else the
//                              last segment of its `type`, else http_<status>
//   408, 425, 429, 5xx,        a failed attempt: run again after the backoff or
//   no connection, timeout     the response's Retry-After, whichever is longer
//
// A response body is read up to the event limit (1 MiB); a longer one is a
// failed attempt. HTTPS upstreams are checked against the system's CAs, or
// the `ca` file when one is set.
#include <chrono>
#include <map>
#include <string>

#include "workers/external/handler.h"

namespace asyncops {

struct HttpOptions {
  std::string url;     // scheme://host[:port]/path/{param}
  std::string method;  // "" for the route's
  std::string ca_file;  // PEM; "" for the system's
  std::map<std::string, std::string> headers;  // added to every request
};

class HttpHandler : public ExternalHandler {
 public:
  // Checks the url (scheme http or https, a host). Returns an error naming
  // what is wrong.
  static Result<std::unique_ptr<HttpHandler>> create(HttpOptions options);
  RunResult handle(const Command& cmd, const RunContext& ctx) override;
  const char* kind() const override { return "http"; }

 private:
  explicit HttpHandler(HttpOptions options) : m_options(std::move(options)) {}
  HttpOptions m_options;
  std::string m_origin;         // scheme://host:port
  std::string m_path_template;  // /path/{param}, with the query if any
};

// Exposed for tests: the path with {name} replaced by the percent-encoded
// param; a placeholder with no param is an error.
Result<std::string> expand_url_path(const std::string& path_template, const nlohmann::json& params);
// Exposed for tests: seconds or an HTTP date in a Retry-After value, as ms
// from now; -1 if it is neither.
int64_t parse_retry_after(const std::string& value);
// Exposed for tests: the code of a 4xx rejection from its body.
std::string rejection_code(int status, const std::string& content_type, const std::string& body);

}  // namespace asyncops
