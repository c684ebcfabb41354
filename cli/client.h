#pragma once
// ApiClient: the CLI's HTTP client. A transport failure is an Unreachable
// error (exit 6); an HTTP error answer carries the problem+json detail.
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace httplib {
class Client;
}

namespace asyncops {

struct ApiResponse {
  bool reached = false;  // false: no HTTP answer at all
  std::string transport_error;
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  nlohmann::json json;  // the parsed body, or null
  // Set when a 404 came without asyncopsd's problem+json and GET /healthz
  // did not answer 200 either: the URL is something else (describe() says so).
  std::string not_asyncops;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? "" : it->second;
  }
  // "404 Not Found: no operation X": for one-line error messages. With a
  // hint where one helps: no daemon, a URL that is not asyncopsd, a 401.
  std::string describe() const;
};

class ApiClient {
 public:
  explicit ApiClient(const std::string& base_url);
  ~ApiClient();

  ApiResponse get(const std::string& path_and_query, int timeout_s = 10);
  ApiResponse send(const std::string& method, const std::string& path, const std::string& body,
                   const std::map<std::string, std::string>& headers = {}, int timeout_s = 10);
  const std::string& base_url() const { return m_base; }

 private:
  ApiResponse checked(ApiResponse r, const std::string& path);
  std::string m_base;
  std::unique_ptr<httplib::Client> m_client;
};

// The URL in a data dir's URL file (asyncopsd writes it once it listens),
// or "".
std::string read_url_file(const std::string& data_dir);

// Applies $ASYNCOPS_TOKEN (Authorization: Bearer) and $ASYNCOPS_CACERT (the
// CA to trust for https://) to a client; `asyncops --token/--cacert` set them.
void configure_access(httplib::Client& client);

// Percent-encodes a query value.
std::string url_encode(const std::string& s);

}  // namespace asyncops
