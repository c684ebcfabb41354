#include "shared/problem.h"

#include <nlohmann/json.hpp>

namespace asyncops {

const char* status_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Server Error" : "Client Error";
  }
}

std::string to_json(const Problem& p) {
  nlohmann::json j = {{"type", "about:blank"},
                      {"title", p.title.empty() ? status_phrase(p.status) : p.title},
                      {"status", p.status}};
  if (!p.detail.empty()) j["detail"] = p.detail;
  if (!p.instance.empty()) j["instance"] = p.instance;
  if (!p.code.empty()) j["code"] = p.code;
  if (!p.errors.empty()) {
    nlohmann::json errs = nlohmann::json::array();
    for (const auto& e : p.errors) errs.push_back({{"pointer", e.pointer}, {"detail", e.detail}});
    j["errors"] = std::move(errs);
  }
  // Replace invalid UTF-8 rather than throw: details may echo client input.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Problem make_problem(int status, std::string detail, std::string code) {
  Problem p;
  p.status = status;
  p.detail = std::move(detail);
  p.code = std::move(code);
  return p;
}

}  // namespace asyncops
