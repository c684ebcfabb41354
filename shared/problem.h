#pragma once
// RFC 9457 problem details. Every HTTP error the daemon sends is one of these,
// as application/problem+json.
#include <string>
#include <vector>

namespace asyncops {

inline constexpr const char* k_problem_media_type = "application/problem+json";

struct FieldError {
  std::string pointer;  // JSON Pointer into the request body, e.g. "/email"
  std::string detail;
};

struct Problem {
  int status = 500;
  std::string title;   // defaults to the status phrase
  std::string detail;
  std::string code;    // machine-readable extension member, e.g. "invalid_json"
  std::string instance;
  std::vector<FieldError> errors;
};

// The usual problem: status, a detail for people and a code for programs;
// the title is the status phrase, no instance, no field errors.
Problem make_problem(int status, std::string detail, std::string code);

// The reason phrase of an HTTP status, e.g. "Not Found".
const char* status_phrase(int status);

// {"type":"about:blank","title":...,"status":...,...} as a string.
std::string to_json(const Problem& p);

}  // namespace asyncops
