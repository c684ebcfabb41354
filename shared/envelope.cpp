#include "shared/envelope.h"

#include <algorithm>
#include <type_traits>

#include "shared/ids.h"
#include "shared/json_limits.h"
#include "shared/json_text.h"

namespace asyncops {
namespace {

using nlohmann::json;

// A decoding failure: the message, and which kind of refusal it is.
struct Failure {
  std::string message;
  Refusal why = Refusal::malformed;
};

// Reads an optional string member (v: the member, or null when absent) of
// at most max_bytes; fails on a member of another type or a longer one. A
// member the caller owns (Json not const) is moved out, not copied.
template <typename Json>
bool read_string(Json* v, const char* key, std::string* out, Failure* err, bool required, size_t max_bytes) {
  if (!v || v->is_null()) {
    if (required) *err = {std::string("missing field '") + key + "'", Refusal::malformed};
    return !required;
  }
  if (!v->is_string()) {
    *err = {std::string("field '") + key + "' must be a string", Refusal::malformed};
    return false;
  }
  auto& text = v->template get_ref<std::conditional_t<std::is_const_v<Json>, const std::string&, std::string&>>();
  if (text.size() > max_bytes) {
    *err = {std::string("field '") + key + "' is " + std::to_string(text.size()) + " bytes, more than " +
                std::to_string(max_bytes),
            Refusal::field_too_long};
    return false;
  }
  *out = std::move(text);  // a copy when text is const
  return true;
}

bool read_int(const json* v, const char* key, int64_t* out, Failure* err) {
  if (!v || v->is_null()) return true;
  if (!v->is_number_integer()) {
    *err = {std::string("field '") + key + "' must be an integer", Refusal::malformed};
    return false;
  }
  *out = v->get<int64_t>();
  return true;
}

const json* member(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

bool get_string(const json& j, const char* key, std::string* out, Failure* err, bool required, size_t max_bytes) {
  return read_string(member(j, key), key, out, err, required, max_bytes);
}
bool get_int(const json& j, const char* key, int64_t* out, Failure* err) {
  return read_int(member(j, key), key, out, err);
}
// The same for a message decoded into its members.
bool get_string(JsonMembers& m, const char* key, std::string* out, Failure* err, bool required, size_t max_bytes) {
  return read_string(m.find(key), key, out, err, required, max_bytes);
}
bool get_int(JsonMembers& m, const char* key, int64_t* out, Failure* err) {
  return read_int(m.find(key), key, out, err);
}

Refusal refusal_of(JsonViolation v) {
  switch (v) {
    case JsonViolation::too_large: return Refusal::too_large;
    case JsonViolation::too_deep: return Refusal::too_deep;
    case JsonViolation::too_many_values: return Refusal::too_many_fields;
    case JsonViolation::string_too_long: return Refusal::field_too_long;
    default: return Refusal::malformed;
  }
}

JsonLimits limits(size_t max_bytes, size_t max_values) {
  JsonLimits l;
  l.max_bytes = max_bytes;
  l.max_depth = k_max_message_depth;
  l.max_values = max_values;
  l.max_string_bytes = max_bytes;  // the size limit bounds each string
  return l;
}

// The refusals every decoder makes of a parsed body, in this order: not
// JSON, over a limit, not an object, another protocol version (v is the
// body's "v" member, or null).
bool body_acceptable(JsonViolation violation, const std::string& error, bool object, const json* v, Failure* err) {
  if (violation == JsonViolation::invalid) {
    *err = {"body is not valid JSON", Refusal::malformed};
    return false;
  }
  if (violation != JsonViolation::none) {
    *err = {"body refused: " + error, refusal_of(violation)};
    return false;
  }
  if (!object) {
    *err = {"body is not a JSON object", Refusal::malformed};
    return false;
  }
  if (v && (!v->is_number_integer() || v->get<int64_t>() != k_protocol_version)) {
    *err = {"unsupported protocol version", Refusal::malformed};
    return false;
  }
  return true;
}

// Parses body within lim into *out; on failure fills *err.
bool parse_object(const std::string& body, const JsonLimits& lim, json* out, Failure* err) {
  BoundedJson parsed = parse_json_within(body, lim);
  if (!body_acceptable(parsed.violation, parsed.error, parsed.value.is_object(), member(parsed.value, "v"), err)) {
    return false;
  }
  *out = std::move(parsed.value);
  return true;
}

// parse_object for the messages on every operation (commands, events):
// their members, without a tree for the object itself.
bool parse_members(const std::string& body, const JsonLimits& lim, JsonMembers* out, Failure* err) {
  BoundedMembers parsed = parse_json_members_within(body, lim);
  if (!body_acceptable(parsed.violation, parsed.error, parsed.object, parsed.value.find("v"), err)) return false;
  *out = std::move(parsed.value);
  return true;
}

bool step_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool is_step_name(const std::string& s) {
  if (s.empty() || s.size() > k_max_step_name_bytes) return false;
  for (char c : s) {
    if (!step_name_char(c)) return false;
  }
  return true;
}

constexpr size_t k_uuid_bytes = 36;
constexpr const char* k_undo_suffix = ".undo";

// The request id of a saga command: what its "saga" member says its "id" is.
std::string saga_request_id(const SagaRef& s) {
  return s.operation + "." + s.step + (s.compensation ? k_undo_suffix : "");
}

// The error to return, with its kind reported through why.
Error fail(const Failure& f, Refusal* why) {
  if (why) *why = f.why;
  return Error{f.message};
}
Error fail(std::string message, Refusal* why, Refusal kind = Refusal::malformed) {
  return fail(Failure{std::move(message), kind}, why);
}

}  // namespace

// Commands and events go out on every operation: their text is written
// directly (keys in sorted order, as nlohmann would write them).
Frames encode(const Command& c) {
  Frames f{k_kind_command, {}};
  f.body.reserve(256);
  JsonObjectWriter w(f.body);
  w.number("attempt", c.attempt);
  if (c.cancel) w.boolean("cancel", true);
  w.string("created_at", c.created_at)
      .string("id", c.id);
  if (c.lease_ms > 0) w.number("lease_ms", c.lease_ms);
  w.string("name", c.name)
      .string("origin", c.origin)
      .value_or_text("params", c.params, c.params_text)
      .value_or_text("payload", c.payload, c.payload_text);
  if (c.ready_seq > 0) w.number("ready_seq", c.ready_seq);
  w.string("resource", c.resource);
  if (!c.saga.operation.empty()) {
    w.value("saga", json{{"compensation", c.saga.compensation}, {"operation", c.saga.operation}, {"step", c.saga.step}});
  }
  w.string("service", c.service);
  if (!c.steps.is_null()) w.value("steps", c.steps);
  w.number("v", k_protocol_version);
  w.close();
  return f;
}

Frames encode(const Event& e) {
  Frames f{k_kind_event, {}};
  f.body.reserve(256);
  JsonObjectWriter w(f.body);
  w.number("attempt", e.attempt);
  if (!e.code.empty()) w.string("code", e.code);
  if (!e.data.is_null()) w.value("data", e.data);
  if (e.deleted) w.boolean("deleted", true);
  if (!e.message.empty()) w.string("message", e.message);
  w.string("request_id", e.request_id);
  if (!e.resource.empty()) w.string("resource", e.resource);
  w.string("state", to_string(e.state))
      .string("time", e.time)
      .string("type", e.type)
      .number("v", k_protocol_version);
  if (e.version > 0) w.number("version", e.version);
  w.string("worker", e.worker);
  w.close();
  return f;
}

Frames encode(const Heartbeat& h) {
  json j = {{"v", k_protocol_version}, {"worker", h.worker}, {"service", h.service},
            {"host", h.host}, {"pid", h.pid}, {"in_flight", h.in_flight}, {"time", h.time}};
  if (!h.requests.empty()) j["requests"] = h.requests;
  if (!h.kind.empty()) j["kind"] = h.kind;
  return {k_kind_heartbeat, j.dump()};
}

Frames encode(const CancelNotice& c) {
  return {k_kind_cancel, json{{"v", k_protocol_version}, {"request_id", c.request_id}}.dump()};
}

Frames encode(const FenceNotice& f) {
  json j{{"v", k_protocol_version}, {"request_id", f.request_id}};
  if (!f.service.empty()) j["service"] = f.service;
  return {k_kind_fence, j.dump()};
}

Frames encode(const ReadyMessage& r) {
  json j{{"v", k_protocol_version}, {"worker", r.worker}, {"credit", r.credit}};
  if (!r.service.empty()) j["service"] = r.service;
  if (r.seq > 0) j["seq"] = r.seq;
  return {k_kind_ready, j.dump()};
}

Frames encode(const ClaimMessage& c) {
  json claims = json::array();
  for (const ClaimEntry& e : c.claims) claims.push_back({{"id", e.id}, {"attempt", e.attempt}});
  return {k_kind_claim, json{{"v", k_protocol_version}, {"claims", std::move(claims)}}.dump()};
}

Frames encode(const GrantMessage& g) {
  json granted = json::array(), refused = json::array();
  for (const GrantEntry& e : g.granted) {
    json one{{"id", e.id}, {"attempt", e.attempt}};
    if (e.cancel) one["cancel"] = true;
    granted.push_back(std::move(one));
  }
  for (const GrantEntry& e : g.refused) refused.push_back({{"id", e.id}, {"attempt", e.attempt}, {"reason", e.reason}});
  return {k_kind_grant, json{{"v", k_protocol_version}, {"lease_ms", g.lease_ms}, {"granted", std::move(granted)},
                             {"refused", std::move(refused)}}
                            .dump()};
}

const char* to_string(Refusal r) {
  switch (r) {
    case Refusal::malformed: return "malformed";
    case Refusal::too_large: return "too_large";
    case Refusal::too_deep: return "too_deep";
    case Refusal::too_many_fields: return "too_many_fields";
    case Refusal::field_too_long: return "field_too_long";
    case Refusal::too_many_ids: return "too_many_ids";
  }
  return "malformed";
}

Result<Command> decode_command(const std::string& kind, const std::string& body, Refusal* why) {
  if (kind != k_kind_command) return fail("frame 0 is '" + kind.substr(0, 32) + "', not 'command'", why);
  JsonMembers j;
  Failure err;
  if (!parse_members(body, limits(k_max_command_bytes, k_max_command_values), &j, &err)) return fail(err, why);
  Command c;
  int64_t attempt = 1;
  if (!get_string(j, "id", &c.id, &err, true, k_max_request_id_bytes) ||
      !get_string(j, "name", &c.name, &err, true, k_max_id_bytes) ||
      !get_string(j, "service", &c.service, &err, false, k_max_id_bytes) ||
      !get_string(j, "origin", &c.origin, &err, false, k_max_resource_bytes) ||
      !get_string(j, "resource", &c.resource, &err, false, k_max_resource_bytes) ||
      !get_string(j, "created_at", &c.created_at, &err, false, k_max_id_bytes) ||
      !get_int(j, "attempt", &attempt, &err) || !get_int(j, "ready_seq", &c.ready_seq, &err) ||
      !get_int(j, "lease_ms", &c.lease_ms, &err)) {
    return fail(err, why);
  }
  if (c.ready_seq < 0 || c.ready_seq > k_max_seq) {
    return fail("field 'ready_seq' must be an integer from 0 to " + std::to_string(k_max_seq), why);
  }
  if (c.lease_ms < 0 || c.lease_ms > k_max_lease_ms) {
    return fail("field 'lease_ms' must be an integer from 0 to " + std::to_string(k_max_lease_ms), why);
  }
  if (!is_request_id(c.id)) return fail("field 'id' is not a request id", why);
  if (c.name.empty()) return fail("field 'name' is empty", why);
  c.attempt = static_cast<int>(attempt);
  if (json* it = j.find("params"); it && !it->is_null()) {
    if (!it->is_object()) return fail("field 'params' must be an object", why);
    c.params = std::move(*it);
  }
  if (json* it = j.find("payload"); it && !it->is_null()) c.payload = std::move(*it);
  if (json* it = j.find("cancel"); it && !it->is_null()) {
    if (!it->is_boolean()) return fail("field 'cancel' must be a boolean", why);
    c.cancel = it->get<bool>();
  }
  if (json* it = j.find("saga"); it && !it->is_null()) {
    if (!it->is_object()) return fail("field 'saga' must be an object", why);
    if (!get_string(*it, "operation", &c.saga.operation, &err, true, k_max_request_id_bytes) ||
        !get_string(*it, "step", &c.saga.step, &err, true, k_max_step_name_bytes)) {
      err.message = "field 'saga': " + err.message;
      return fail(err, why);
    }
    if (auto comp = it->find("compensation"); comp != it->end() && !comp->is_null()) {
      if (!comp->is_boolean()) return fail("field 'saga': field 'compensation' must be a boolean", why);
      c.saga.compensation = comp->get<bool>();
    }
    if (!is_uuid(c.saga.operation) || !is_step_name(c.saga.step) || saga_request_id(c.saga) != c.id) {
      return fail("field 'saga' does not name the step that field 'id' names", why);
    }
  } else if (c.id.size() != k_uuid_bytes) {
    return fail("field 'id' names a saga step, but field 'saga' is missing", why);
  }
  if (json* it = j.find("steps"); it && !it->is_null()) {
    if (!it->is_object()) return fail("field 'steps' must be an object", why);
    if (it->size() > k_max_saga_steps) {
      return fail("field 'steps' holds " + std::to_string(it->size()) + " steps, more than " +
                      std::to_string(k_max_saga_steps),
                  why, Refusal::too_many_fields);
    }
    for (auto s = it->begin(); s != it->end(); ++s) {
      if (!is_step_name(s.key())) return fail("field 'steps' has a key that is not a step name", why);
      if (!s->is_object()) return fail("field 'steps': each step must be an object", why);
    }
    c.steps = std::move(*it);
  }
  return c;
}

Result<Event> decode_event(const std::string& body, Refusal* why) {
  JsonMembers j;
  Failure err;
  if (!parse_members(body, limits(k_max_event_bytes, k_max_event_values), &j, &err)) return fail(err, why);
  Event e;
  std::string state;
  int64_t attempt = 1;
  if (!get_string(j, "request_id", &e.request_id, &err, true, k_max_request_id_bytes) ||
      !get_string(j, "type", &e.type, &err, false, k_max_id_bytes) ||
      !get_string(j, "state", &state, &err, true, k_max_id_bytes) ||
      !get_string(j, "code", &e.code, &err, false, k_max_id_bytes) ||
      !get_string(j, "message", &e.message, &err, false, k_max_message_bytes) ||
      !get_string(j, "resource", &e.resource, &err, false, k_max_resource_bytes) ||
      !get_string(j, "worker", &e.worker, &err, false, k_max_id_bytes) ||
      !get_string(j, "time", &e.time, &err, false, k_max_id_bytes) || !get_int(j, "attempt", &attempt, &err)) {
    return fail(err, why);
  }
  if (!is_request_id(e.request_id)) return fail("field 'request_id' is not a request id", why);
  auto st = parse_state(state);
  if (!st) return fail("field 'state' has unknown value '" + state.substr(0, 32) + "'", why);
  if (*st == OpState::pending) return fail("field 'state' may not be 'pending'", why);
  e.state = *st;
  e.attempt = static_cast<int>(attempt);
  if (!get_int(j, "version", &e.version, &err)) return fail(err, why);
  if (e.version < 0) return fail("field 'version' must not be negative", why);
  if (json* it = j.find("data")) e.data = std::move(*it);
  if (json* it = j.find("deleted"); it && !it->is_null()) {
    if (!it->is_boolean()) return fail("field 'deleted' must be a boolean", why);
    e.deleted = it->get<bool>();
  }
  if (e.deleted && !e.data.is_null()) return fail("an event cannot carry both 'data' and 'deleted'", why);
  return e;
}

Result<Heartbeat> decode_heartbeat(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  // The values limit leaves room for every allowed request id and the
  // other fields; the ids themselves are counted below.
  if (!parse_object(body, limits(k_max_heartbeat_bytes, k_max_heartbeat_requests + 64), &j, &err)) {
    // More values than ids allowed is the too-many-ids case, named as such.
    if (err.why == Refusal::too_many_fields) err.why = Refusal::too_many_ids;
    return fail(err, why);
  }
  Heartbeat h;
  if (!get_string(j, "worker", &h.worker, &err, true, k_max_id_bytes) ||
      !get_string(j, "service", &h.service, &err, false, k_max_id_bytes) ||
      !get_string(j, "kind", &h.kind, &err, false, k_max_id_bytes) ||
      !get_string(j, "host", &h.host, &err, false, k_max_host_bytes) ||
      !get_string(j, "time", &h.time, &err, false, k_max_id_bytes) || !get_int(j, "pid", &h.pid, &err) ||
      !get_int(j, "in_flight", &h.in_flight, &err)) {
    return fail(err, why);
  }
  if (h.worker.empty()) return fail("field 'worker' is empty", why);
  if (auto it = j.find("requests"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return fail("field 'requests' must be an array", why);
    if (it->size() > k_max_heartbeat_requests) {
      return fail("field 'requests' holds " + std::to_string(it->size()) + " ids, more than " +
                      std::to_string(k_max_heartbeat_requests),
                  why, Refusal::too_many_ids);
    }
    h.requests.reserve(it->size());
    for (const auto& r : *it) {
      if (!r.is_string()) return fail("field 'requests' must hold strings", why);
      if (r.get_ref<const std::string&>().size() > k_max_request_id_bytes) {
        return fail("a request id in 'requests' is longer than " + std::to_string(k_max_request_id_bytes) + " bytes",
                    why, Refusal::field_too_long);
      }
      if (!is_request_id(r.get_ref<const std::string&>())) return fail("field 'requests' holds a string that is not a request id", why);
      h.requests.push_back(r.get<std::string>());
    }
  }
  return h;
}

Result<CancelNotice> decode_cancel(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  if (!parse_object(body, limits(k_max_cancel_bytes, 64), &j, &err)) return fail(err, why);
  CancelNotice c;
  if (!get_string(j, "request_id", &c.request_id, &err, true, k_max_request_id_bytes)) return fail(err, why);
  if (!is_request_id(c.request_id)) return fail("field 'request_id' is not a request id", why);
  return c;
}

Result<FenceNotice> decode_fence(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  if (!parse_object(body, limits(k_max_cancel_bytes, 64), &j, &err)) return fail(err, why);
  FenceNotice f;
  if (!get_string(j, "request_id", &f.request_id, &err, true, k_max_request_id_bytes) ||
      !get_string(j, "service", &f.service, &err, false, k_max_id_bytes)) {
    return fail(err, why);
  }
  if (!is_request_id(f.request_id)) return fail("field 'request_id' is not a request id", why);
  return f;
}

Result<ReadyMessage> decode_ready(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  if (!parse_object(body, limits(k_max_flow_bytes, 64), &j, &err)) return fail(err, why);
  ReadyMessage r;
  int64_t credit = -1;
  if (!get_string(j, "worker", &r.worker, &err, false, k_max_id_bytes) ||
      !get_string(j, "service", &r.service, &err, false, k_max_id_bytes) || !get_int(j, "credit", &credit, &err) ||
      !get_int(j, "seq", &r.seq, &err)) {
    return fail(err, why);
  }
  if (r.seq < 0 || r.seq > k_max_seq) {
    return fail("field 'seq' must be an integer from 0 to " + std::to_string(k_max_seq), why);
  }
  if (credit < 0 || credit > k_max_credit) {
    return fail("field 'credit' must be an integer from 0 to " + std::to_string(k_max_credit), why);
  }
  r.credit = credit;
  return r;
}

namespace {
// The entries of a claim or grant list: objects with an "id" (a UUID) and an
// "attempt" (1 or more), and, when reasons is set, a "reason".
bool get_entries(const json& j, const char* key, std::vector<GrantEntry>* out, Failure* err, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) *err = {std::string("missing field '") + key + "'", Refusal::malformed};
    return !required;
  }
  if (!it->is_array()) {
    *err = {std::string("field '") + key + "' must be an array", Refusal::malformed};
    return false;
  }
  if (it->size() > k_max_claims) {
    *err = {std::string("field '") + key + "' holds " + std::to_string(it->size()) + " entries, more than " +
                std::to_string(k_max_claims),
            Refusal::too_many_ids};
    return false;
  }
  for (const json& one : *it) {
    if (!one.is_object()) {
      *err = {std::string("field '") + key + "' must hold objects", Refusal::malformed};
      return false;
    }
    GrantEntry e;
    int64_t attempt = 0;
    if (!get_string(one, "id", &e.id, err, true, k_max_request_id_bytes) || !get_int(one, "attempt", &attempt, err) ||
        !get_string(one, "reason", &e.reason, err, false, k_max_id_bytes)) {
      return false;
    }
    if (!is_request_id(e.id)) {
      *err = {std::string("an id in '") + key + "' is not a request id", Refusal::malformed};
      return false;
    }
    if (attempt < 1 || attempt > 1000000) {
      *err = {std::string("an attempt in '") + key + "' must be an integer of at least 1", Refusal::malformed};
      return false;
    }
    e.attempt = static_cast<int>(attempt);
    if (auto c = one.find("cancel"); c != one.end() && !c->is_null()) {
      if (!c->is_boolean()) {
        *err = {"field 'cancel' must be a boolean", Refusal::malformed};
        return false;
      }
      e.cancel = c->get<bool>();
    }
    out->push_back(std::move(e));
  }
  return true;
}
}  // namespace

Result<ClaimMessage> decode_claim(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  if (!parse_object(body, limits(k_max_flow_bytes, 4 * k_max_claims + 64), &j, &err)) return fail(err, why);
  std::vector<GrantEntry> entries;
  if (!get_entries(j, "claims", &entries, &err, true)) return fail(err, why);
  ClaimMessage c;
  c.claims.reserve(entries.size());
  for (GrantEntry& e : entries) c.claims.push_back({std::move(e.id), e.attempt});
  return c;
}

Result<GrantMessage> decode_grant(const std::string& body, Refusal* why) {
  json j;
  Failure err;
  if (!parse_object(body, limits(k_max_grant_bytes, 16 * k_max_claims + 64), &j, &err)) return fail(err, why);
  GrantMessage g;
  if (!get_int(j, "lease_ms", &g.lease_ms, &err) || !get_entries(j, "granted", &g.granted, &err, false) ||
      !get_entries(j, "refused", &g.refused, &err, false)) {
    return fail(err, why);
  }
  if (g.lease_ms <= 0) return fail("field 'lease_ms' must be a positive integer", why);
  return g;
}

bool is_request_id(const std::string& s) {
  if (s.size() == k_uuid_bytes) return is_uuid(s);
  if (s.size() < k_uuid_bytes + 2 || s[k_uuid_bytes] != '.' || !is_uuid(std::string_view(s).substr(0, k_uuid_bytes))) {
    return false;
  }
  std::string step = s.substr(k_uuid_bytes + 1);
  const std::string undo = k_undo_suffix;
  // A step name has no '.', so ".undo" can only be the suffix.
  if (step.size() > undo.size() && step.compare(step.size() - undo.size(), undo.size(), undo) == 0) {
    step.resize(step.size() - undo.size());
  }
  return is_step_name(step);
}

std::string peek_request_id(const std::string& body) {
  static const std::string key = "\"request_id\"";
  size_t at = body.find(key);
  if (at == std::string::npos) return "";
  size_t i = body.find_first_not_of(" \t\r\n", at + key.size());
  if (i == std::string::npos || body[i] != ':') return "";
  i = body.find_first_not_of(" \t\r\n", i + 1);
  if (i == std::string::npos || body[i] != '"') return "";
  // Looks no further than the longest request id and its closing quote.
  size_t limit = std::min(body.size(), i + 2 + k_max_request_id_bytes);
  size_t end = i + 1;
  while (end < limit && body[end] != '"') ++end;
  if (end >= limit) return "";
  std::string id = body.substr(i + 1, end - i - 1);
  return is_request_id(id) ? id : "";
}

Status check_event_limits(const Event& e) {
  std::string body;
  return check_event_limits(e, &body);
}

Status check_event_limits(const Event& e, std::string* body) {
  // Before encode(): dump() recurses once per level.
  if (!json_depth_within(e.data, k_max_message_depth - 1)) {
    return Error{"field 'data' nests more than " + std::to_string(k_max_message_depth - 1) + " levels deep"};
  }
  *body = encode(e).body;
  return check_encoded_event(e, *body);
}

namespace {
// True when decode_event(body), body being encode(e).body, certainly
// succeeds. Each string field reads back as the same bytes when it is valid
// UTF-8 (encode() writes it unchanged), so its limit is checked on e; the
// text's own limits by one pass over it (json_certainly_within: encode()
// writes valid JSON). Anything less plain is left to the decoder.
bool event_certainly_decodes(const Event& e, const std::string& body) {
  auto fits = [](const std::string& s, size_t max_bytes) { return s.size() <= max_bytes && is_valid_utf8(s); };
  return json_certainly_within(body, limits(k_max_event_bytes, k_max_event_values)) &&
         fits(e.request_id, k_max_request_id_bytes) && is_request_id(e.request_id) && fits(e.type, k_max_id_bytes) &&
         e.state != OpState::pending && fits(e.code, k_max_id_bytes) && fits(e.message, k_max_message_bytes) &&
         fits(e.resource, k_max_resource_bytes) && fits(e.worker, k_max_id_bytes) && fits(e.time, k_max_id_bytes) &&
         e.version >= 0 && !e.data.is_discarded() && !(e.deleted && !e.data.is_null());
}
}  // namespace

Status check_encoded_event(const Event& e, const std::string& body) {
  if (event_certainly_decodes(e, body)) return Status::success();
  // Decoding the encoded text is the one exact check: the receiver decodes
  // the same bytes.
  Refusal why = Refusal::malformed;
  auto decoded = decode_event(body, &why);
  if (!decoded) return Error{decoded.error()};
  return Status::success();
}

}  // namespace asyncops
