#include "store/operation.h"

#include <algorithm>

#include "shared/clock.h"
#include "shared/json_text.h"
#include "shared/name_table.h"

namespace asyncops {

namespace {
// The document's "steps" of a saga operation whose steps were read.
nlohmann::json operation_steps_json(const OperationRecord& op) {
  saga::SagaState s;
  s.op_id = op.id;
  for (const StepView& v : op.steps) {
    s.plan.push_back(v.plan);
    s.steps.push_back(v.status);
  }
  return saga::steps_json(s);
}
}  // namespace

nlohmann::json operation_json(const OperationRecord& op) {
  nlohmann::json j = {{"id", op.id},
                      {"name", op.name},
                      {"state", to_string(op.state)},
                      {"code", op.code.empty() ? nlohmann::json() : nlohmann::json(op.code)},
                      {"message", op.message.empty() ? nlohmann::json() : nlohmann::json(op.message)},
                      {"resource", op.resource},
                      {"origin", op.origin},
                      {"owner", op.owner},
                      {"retry_of", op.retry_of.empty() ? nlohmann::json() : nlohmann::json(op.retry_of)},
                      {"service", op.service},
                      {"attempt", op.attempt},
                      {"done", is_terminal(op.state)},
                      {"cancel_requested", op.cancel_requested},
                      {"created_at", format_rfc3339_ms(op.created_at)},
                      {"updated_at", format_rfc3339_ms(op.updated_at)}};
  if (op.step_count > 0 && !op.steps.empty()) j["steps"] = operation_steps_json(op);
  return j;
}

std::string operation_json_text(const OperationRecord& op) {
  std::string out;
  out.reserve(320);
  JsonObjectWriter w(out);
  w.number("attempt", op.attempt)
      .boolean("cancel_requested", op.cancel_requested)
      .string_or_null("code", op.code)
      .string("created_at", format_rfc3339_ms(op.created_at))
      .boolean("done", is_terminal(op.state))
      .string("id", op.id)
      .string_or_null("message", op.message)
      .string("name", op.name)
      .string("origin", op.origin)
      .string("owner", op.owner)
      .string("resource", op.resource)
      .string_or_null("retry_of", op.retry_of)
      .string("service", op.service)
      .string("state", to_string(op.state));
  if (op.step_count > 0 && !op.steps.empty()) w.value("steps", operation_steps_json(op));
  w.string("updated_at", format_rfc3339_ms(op.updated_at));
  w.close();
  return out;
}

nlohmann::json operation_detail_json(const OperationRecord& op, const std::vector<std::string>& retries) {
  nlohmann::json j = operation_json(op);
  auto space = op.origin.find(' ');
  j["request"] = {{"method", space == std::string::npos ? op.origin : op.origin.substr(0, space)},
                  {"path", space == std::string::npos ? std::string() : op.origin.substr(space + 1)},
                  {"body", op.payload}};
  j["params"] = op.params;
  j["worker"] = op.worker.empty() ? nlohmann::json() : nlohmann::json(op.worker);
  j["retries"] = retries;
  return j;
}

namespace {
struct HistoryKindName {
  HistoryKind kind;
  const char* name;
};
constexpr HistoryKindName k_history_kind_names[] = {
    {HistoryKind::accepted, "accepted"},
    {HistoryKind::dispatched, "dispatched"},
    {HistoryKind::redelivered, "redelivered"},
    {HistoryKind::processing, "processing"},
    {HistoryKind::cancel_requested, "cancel_requested"},
    {HistoryKind::completed, "completed"},
    {HistoryKind::rejected, "rejected"},
    {HistoryKind::failed, "failed"},
    {HistoryKind::canceled, "canceled"},
    {HistoryKind::superseded, "superseded"},
    {HistoryKind::late_outcome, "late_outcome"},
    {HistoryKind::step_dispatched, "step_dispatched"},
    {HistoryKind::step_redelivered, "step_redelivered"},
    {HistoryKind::step_processing, "step_processing"},
    {HistoryKind::step_completed, "step_completed"},
    {HistoryKind::step_rejected, "step_rejected"},
    {HistoryKind::step_failed, "step_failed"},
    {HistoryKind::step_canceled, "step_canceled"},
    {HistoryKind::step_settling, "step_settling"},
    {HistoryKind::step_skipped, "step_skipped"},
    {HistoryKind::compensation_dispatched, "compensation_dispatched"},
    {HistoryKind::compensation_redelivered, "compensation_redelivered"},
    {HistoryKind::compensation_processing, "compensation_processing"},
    {HistoryKind::compensation_completed, "compensation_completed"},
    {HistoryKind::compensation_failed, "compensation_failed"},
    {HistoryKind::compensation_abandoned, "compensation_abandoned"},
};
}  // namespace

const char* to_string(HistoryKind k) { return name_in(k_history_kind_names, k); }

std::optional<HistoryKind> parse_history_kind(std::string_view text) {
  return value_named<HistoryKind>(k_history_kind_names, text);
}

bool is_compensation_kind(HistoryKind k) {
  switch (k) {
    case HistoryKind::compensation_dispatched:
    case HistoryKind::compensation_redelivered:
    case HistoryKind::compensation_processing:
    case HistoryKind::compensation_completed:
    case HistoryKind::compensation_failed:
    case HistoryKind::compensation_abandoned:
      return true;
    default:
      return false;
  }
}

HistoryKind history_kind_of(OpState s) {
  switch (s) {
    case OpState::pending: return HistoryKind::accepted;
    case OpState::processing: return HistoryKind::processing;
    case OpState::completed: return HistoryKind::completed;
    case OpState::rejected: return HistoryKind::rejected;
    case OpState::failed: return HistoryKind::failed;
    case OpState::canceled: return HistoryKind::canceled;
  }
  return HistoryKind::failed;
}

nlohmann::json history_json(const HistoryEntry& h) {
  return {{"seq", h.seq},
          {"kind", to_string(h.kind)},
          {"state", to_string(h.state)},
          {"code", h.code.empty() ? nlohmann::json() : nlohmann::json(h.code)},
          {"message", h.message.empty() ? nlohmann::json() : nlohmann::json(h.message)},
          {"at", format_rfc3339_ms(h.at)},
          {"step", h.step.empty() ? nlohmann::json() : nlohmann::json(h.step)}};
}

Command command_for(const OperationRecord& op) {
  Command c;
  c.id = op.id;
  c.name = op.name;
  c.service = op.service;
  c.origin = op.origin;
  c.resource = op.resource;
  c.params = op.params;
  c.payload = op.payload;
  c.created_at = format_rfc3339_ms(op.created_at);
  c.attempt = op.attempt < 1 ? 1 : op.attempt;
  return c;
}

Command take_command(OperationRecord& op) {
  nlohmann::json params = std::move(op.params), payload = std::move(op.payload);
  Command c = command_for(op);
  c.params = std::move(params);
  c.payload = std::move(payload);
  op.params = nlohmann::json::object();
  op.payload = nlohmann::json::object();
  return c;
}

bool ends_operation(const Change& c) {
  // A saga's step entries carry the operation's state too; only its own
  // terminal entry ends it.
  return is_terminal(c.op.state) && c.step.empty() && c.kind != HistoryKind::superseded &&
         c.kind != HistoryKind::late_outcome;
}

bool EventSender::may_serve(const std::string& service) const {
  return services.empty() || std::find(services.begin(), services.end(), service) != services.end();
}

bool may_supersede(const OperationRecord& op, const Event& e) {
  if (op.state != OpState::failed || op.code != "worker_timeout") return false;
  if (!is_terminal(e.state)) return false;
  // A fenced worker's own record of the give-up agrees with it: nothing to change.
  return !(e.state == OpState::failed && e.code == "worker_timeout");
}

}  // namespace asyncops
