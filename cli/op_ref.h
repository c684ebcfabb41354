#pragma once
// Operation references: what a user may type where the CLI wants an
// operation id. The daemon hands out an id three ways (the body's "id",
// X-Operation: /operations/ID, Location: http://host/operations/ID), and
// people abbreviate ids as they do git hashes; all of these work.
#include <string>

namespace asyncops {

class ApiClient;

// The id or id prefix inside what was given: strips a scheme://host, a
// leading /operations/, and a trailing slash or /events or /history.
std::string op_ref_text(const std::string& given);

// The first 48 bits of a UUIDv7 are its millisecond timestamp: the earliest
// time an id starting with prefix can have (prefix of hex digits and
// dashes). -1 if prefix says nothing.
int64_t uuid_prefix_min_ms(const std::string& prefix);

struct ResolvedOp {
  std::string id;     // the full id when resolved
  std::string error;  // else a one-line message
  int exit_code = 0;  // and the exit code for it
};

// Resolves given to one full operation id: a full id as is, a prefix of 4
// or more hex digits through the list API (newest first, bounded by the
// prefix's timestamp). Not found, ambiguous (the candidates listed) and
// unreachable are one-line errors. Anything else passes through unchanged,
// for the daemon to answer (404).
ResolvedOp resolve_op(ApiClient& client, const std::string& given);

}  // namespace asyncops
