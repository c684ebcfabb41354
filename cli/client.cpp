#include "cli/client.h"

#include <cstdlib>
#include <fstream>

#include <httplib.h>

#include "shared/paths.h"

namespace asyncops {

std::string ApiResponse::describe() const {
  if (!reached) return transport_error;
  if (!not_asyncops.empty()) return not_asyncops;
  std::string s = std::to_string(status);
  if (json.is_object()) {
    if (json.contains("title") && json["title"].is_string()) s += " " + json["title"].get<std::string>();
    if (json.contains("detail") && json["detail"].is_string()) s += ": " + json["detail"].get<std::string>();
    if (json.contains("errors") && json["errors"].is_array()) {
      std::string errs;
      for (const auto& e : json["errors"]) {
        if (!e.is_object()) continue;
        errs += (errs.empty() ? "" : "; ") + e.value("pointer", std::string()) + " " +
                e.value("detail", std::string());
      }
      if (!errs.empty()) s += " (" + errs + ")";
    }
  }
  if (status == 401) s += " (give a token with --token or ASYNCOPS_TOKEN)";
  return s;
}

ApiClient::ApiClient(const std::string& base_url) : m_base(base_url) {
  while (!m_base.empty() && m_base.back() == '/') m_base.pop_back();
  m_client = std::make_unique<httplib::Client>(m_base);
  m_client->set_connection_timeout(3);
  m_client->set_keep_alive(true);
  m_client->set_tcp_nodelay(true);
  configure_access(*m_client);
}

void configure_access(httplib::Client& client) {
  if (const char* t = std::getenv("ASYNCOPS_TOKEN"); t && *t) client.set_bearer_token_auth(t);
  if (const char* ca = std::getenv("ASYNCOPS_CACERT"); ca && *ca) client.set_ca_cert_path(ca);
}

ApiClient::~ApiClient() = default;

namespace {
ApiResponse convert(const httplib::Result& r, const std::string& base) {
  ApiResponse out;
  if (!r) {
    out.transport_error = "cannot reach the daemon at " + base + " (" + httplib::to_string(r.error()) +
                          "): is the daemon running? `asyncops up`, or set --url / ASYNCOPS_URL";
    return out;
  }
  out.reached = true;
  out.status = r->status;
  for (const auto& [k, v] : r->headers) {
    std::string lower = k;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace(lower, v);
  }
  out.body = r->body;
  out.json = nlohmann::json::parse(r->body, nullptr, false);
  if (out.json.is_discarded()) out.json = nullptr;
  return out;
}
}  // namespace

ApiResponse ApiClient::checked(ApiResponse r, const std::string& path) {
  if (!r.reached || r.status != 404 || path == "/healthz" ||
      r.header("content-type").find("application/problem+json") != std::string::npos) {
    return r;
  }
  // asyncopsd answers every 404 with problem+json: this may be another server.
  m_client->set_read_timeout(3);
  ApiResponse health = convert(m_client->Get("/healthz"), m_base);
  if (health.reached && health.status != 200) {
    r.not_asyncops = m_base + " is not an asyncops daemon (GET /healthz answered " + std::to_string(health.status) +
                     "); check --url / ASYNCOPS_URL";
  }
  return r;
}

ApiResponse ApiClient::get(const std::string& path, int timeout_s) {
  m_client->set_read_timeout(timeout_s);
  return checked(convert(m_client->Get(path), m_base), path);
}

ApiResponse ApiClient::send(const std::string& method, const std::string& path, const std::string& body,
                            const std::map<std::string, std::string>& headers, int timeout_s) {
  m_client->set_read_timeout(timeout_s);
  httplib::Headers h;
  for (const auto& [k, v] : headers) h.emplace(k, v);
  const char* ct = "application/json";
  if (method == "POST") return checked(convert(m_client->Post(path, h, body, ct), m_base), path);
  if (method == "PUT") return checked(convert(m_client->Put(path, h, body, ct), m_base), path);
  if (method == "PATCH") return checked(convert(m_client->Patch(path, h, body, ct), m_base), path);
  if (method == "DELETE") return checked(convert(m_client->Delete(path, h, body, ct), m_base), path);
  if (method == "GET") return checked(convert(m_client->Get(path, h), m_base), path);
  ApiResponse bad;
  bad.transport_error = "unsupported method " + method;
  return bad;
}

std::string read_url_file(const std::string& data_dir) {
  std::ifstream in(url_file(data_dir));
  std::string line;
  if (in && std::getline(in, line) && line.rfind("http", 0) == 0) return line;
  return "";
}

std::string url_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace asyncops
