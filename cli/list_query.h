#pragma once
// Pure helpers for `asyncops list`: the query for one page, the command that
// fetches the next one (the daemon's cursor records only a position, so the
// filters must travel with it), and --since as a duration or a time.
#include <cstdint>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "shared/result.h"

namespace asyncops {

// One argument as a POSIX shell reads it back: bare when it is made only of
// safe characters, else in single quotes.
std::string shell_quote(const std::string& arg);

// "?limit=N&state=…&name=…&since=…&until=…&code=…&owner=…&resource=…&cursor=…"
// for one page (since and until already resolved to RFC 3339).
std::string list_query(const ListOptions& o, const std::string& since_rfc3339, const std::string& until_rfc3339,
                       const std::string& cursor);

// "asyncops [global…] list --state S --name N --since T --limit L --cursor C":
// the exact command for the following page. global: arguments to repeat
// before `list` (e.g. --url U, -o jsonl).
std::string next_page_command(const std::vector<std::string>& global, const ListOptions& o,
                              const std::string& next_cursor);

// --since: "" stays ""; a duration ("90s", "10m", "2h", "7d") means that long
// before now_ms, as RFC 3339; else an RFC 3339 time, returned as given. An
// error naming the flag and saying what is expected on anything else.
Result<std::string> resolve_since(const std::string& text, int64_t now_ms);
// The same for --until (the flag's name in the error).
Result<std::string> resolve_time(const std::string& flag, const std::string& text, int64_t now_ms);

}  // namespace asyncops
