#pragma once
// How the CLI prints: human tables on a TTY, JSON for scripts. Colour only
// on a TTY and never with NO_COLOR set.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asyncops {

enum class OutputFormat { table, json, jsonl };

struct Output {
  OutputFormat format = OutputFormat::table;
  bool color = false;
  // On a terminal: its width (tables fit it) and shortened ids (as git
  // shortens hashes: the shortest unique prefix, 8 characters or more).
  // 0 and false into a pipe, where scripts want whole ids and lines.
  size_t width = 0;
  bool short_ids = false;

  // format_flag: "", "table", "json" or "jsonl"; json_alias: --json given.
  static Output resolve(const std::string& format_flag, bool json_alias);

  void operation(const nlohmann::json& op) const;
  void operations(const nlohmann::json& items) const;
  void value(const nlohmann::json& v) const;  // any JSON document
  // A collection in json or jsonl, by the one rule every command follows:
  // -o json is one document {"items": [...]} (list adds "next"), -o jsonl is
  // one item per line. (Tables are each command's own.)
  void list(const nlohmann::json& items) const;
  std::string state(const std::string& state) const;  // coloured when enabled
};

// The operations table, one string per line (header first): ID, NAME,
// STATE, CODE, RESOURCE (for a delete, the deleted path from its origin),
// CREATED; fitted to out.width by shortening RESOURCE, then NAME, with "…".
std::vector<std::string> operations_table(const nlohmann::json& items, const Output& out);

// A saga's steps table (the document's "steps"), one string per line,
// header first: STEP, SERVICE, STATE, CODE, ATTEMPT, COMPENSATION (its
// state, with its code when it failed; "-" when the step declares none).
// Empty when steps is not a non-empty array (a plain operation).
std::vector<std::string> steps_table(const nlohmann::json& steps, const Output& out);

// What `watch` prints for one pushed document op, given the one before it
// (null for the first): "CLOCK  STATE[  CODE][  MESSAGE]" for the operation
// when it is a plain one or its state, code or message changed; then, for a
// saga, "CLOCK    STEP  STATE[  CODE][  MESSAGE][  (attempt N)]" per step
// whose state, code or attempt changed, and "CLOCK    STEP  compensation
// STATE[  CODE]..." per compensation that did. A step missing from before
// counts as waiting, with no compensation yet, so the first document shows
// every step that has started. Found by name, robust to any stream form
// (a repeated document prints nothing for its steps).
std::vector<std::string> watch_lines(const nlohmann::json& before, const nlohmann::json& op, const Output& out);

// The length of the shortest prefix, at least min_len, that tells all ids
// apart (the whole length if none does).
size_t unique_prefix_length(const std::vector<std::string>& ids, size_t min_len);

// "3s ago", "5m ago", "2h ago", "4d ago" from an RFC 3339 time.
std::string relative_time(const std::string& rfc3339);

// The exit code an operation's final state maps to (see exit_codes.h).
int exit_code_for_state(const std::string& state);

// Prints "asyncops: MESSAGE" on stderr: every CLI error is one such line.
void print_error(const std::string& message);

}  // namespace asyncops
