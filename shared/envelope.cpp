#include "shared/envelope.h"

#include "shared/ids.h"
#include "shared/json_text.h"

namespace asyncops {
namespace {

using nlohmann::json;

// Reads an optional string member; fails on a member of another type.
bool get_string(const json& j, const char* key, std::string* out, std::string* err,
                bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) *err = std::string("missing field '") + key + "'";
    return !required;
  }
  if (!it->is_string()) {
    *err = std::string("field '") + key + "' must be a string";
    return false;
  }
  *out = it->get<std::string>();
  return true;
}

bool get_int(const json& j, const char* key, int64_t* out, std::string* err) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_number_integer()) {
    *err = std::string("field '") + key + "' must be an integer";
    return false;
  }
  *out = it->get<int64_t>();
  return true;
}

Result<json> parse_object(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"body is not valid JSON"};
  if (!j.is_object()) return Error{"body is not a JSON object"};
  auto v = j.find("v");
  if (v != j.end() && (!v->is_number_integer() || v->get<int64_t>() != k_protocol_version)) {
    return Error{"unsupported protocol version"};
  }
  return j;
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
      .string("id", c.id)
      .string("name", c.name)
      .string("origin", c.origin)
      .value("params", c.params)
      .value("payload", c.payload)
      .string("resource", c.resource)
      .string("service", c.service)
      .number("v", k_protocol_version);
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

Result<Command> decode_command(const std::string& kind, const std::string& body) {
  if (kind != k_kind_command) return Error{"frame 0 is '" + kind.substr(0, 32) + "', not 'command'"};
  auto parsed = parse_object(body);
  if (!parsed) return Error{parsed.error()};
  json& j = parsed.value();
  Command c;
  std::string err;
  int64_t attempt = 1;
  if (!get_string(j, "id", &c.id, &err, true) || !get_string(j, "name", &c.name, &err, true) ||
      !get_string(j, "service", &c.service, &err, false) ||
      !get_string(j, "origin", &c.origin, &err, false) ||
      !get_string(j, "resource", &c.resource, &err, false) ||
      !get_string(j, "created_at", &c.created_at, &err, false) ||
      !get_int(j, "attempt", &attempt, &err)) {
    return Error{err};
  }
  if (!is_uuid(c.id)) return Error{"field 'id' is not a UUID"};
  if (c.name.empty()) return Error{"field 'name' is empty"};
  c.attempt = static_cast<int>(attempt);
  if (auto it = j.find("params"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Error{"field 'params' must be an object"};
    c.params = std::move(*it);
  }
  if (auto it = j.find("payload"); it != j.end() && !it->is_null()) c.payload = std::move(*it);
  if (auto it = j.find("cancel"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return Error{"field 'cancel' must be a boolean"};
    c.cancel = it->get<bool>();
  }
  return c;
}

Result<Event> decode_event(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed) return Error{parsed.error()};
  json& j = parsed.value();
  Event e;
  std::string err, state;
  int64_t attempt = 1;
  if (!get_string(j, "request_id", &e.request_id, &err, true) ||
      !get_string(j, "type", &e.type, &err, false) ||
      !get_string(j, "state", &state, &err, true) ||
      !get_string(j, "code", &e.code, &err, false) ||
      !get_string(j, "message", &e.message, &err, false) ||
      !get_string(j, "resource", &e.resource, &err, false) ||
      !get_string(j, "worker", &e.worker, &err, false) ||
      !get_string(j, "time", &e.time, &err, false) || !get_int(j, "attempt", &attempt, &err)) {
    return Error{err};
  }
  if (!is_uuid(e.request_id)) return Error{"field 'request_id' is not a UUID"};
  auto st = parse_state(state);
  if (!st) return Error{"field 'state' has unknown value '" + state.substr(0, 32) + "'"};
  if (*st == OpState::pending) return Error{"field 'state' may not be 'pending'"};
  e.state = *st;
  e.attempt = static_cast<int>(attempt);
  if (!get_int(j, "version", &e.version, &err)) return Error{err};
  if (e.version < 0) return Error{"field 'version' must not be negative"};
  if (auto it = j.find("data"); it != j.end()) e.data = std::move(*it);
  if (auto it = j.find("deleted"); it != j.end() && !it->is_null()) {
    if (!it->is_boolean()) return Error{"field 'deleted' must be a boolean"};
    e.deleted = it->get<bool>();
  }
  if (e.deleted && !e.data.is_null()) return Error{"an event cannot carry both 'data' and 'deleted'"};
  return e;
}

Result<Heartbeat> decode_heartbeat(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed) return Error{parsed.error()};
  const json& j = parsed.value();
  Heartbeat h;
  std::string err;
  if (!get_string(j, "worker", &h.worker, &err, true) ||
      !get_string(j, "service", &h.service, &err, false) ||
      !get_string(j, "host", &h.host, &err, false) ||
      !get_string(j, "time", &h.time, &err, false) || !get_int(j, "pid", &h.pid, &err) ||
      !get_int(j, "in_flight", &h.in_flight, &err)) {
    return Error{err};
  }
  if (auto it = j.find("requests"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return Error{"field 'requests' must be an array"};
    for (const auto& r : *it) {
      if (!r.is_string()) return Error{"field 'requests' must hold strings"};
      h.requests.push_back(r.get<std::string>());
    }
  }
  return h;
}

Result<CancelNotice> decode_cancel(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed) return Error{parsed.error()};
  CancelNotice c;
  std::string err;
  if (!get_string(parsed.value(), "request_id", &c.request_id, &err, true)) return Error{err};
  if (!is_uuid(c.request_id)) return Error{"field 'request_id' is not a UUID"};
  return c;
}

Result<FenceNotice> decode_fence(const std::string& body) {
  auto parsed = parse_object(body);
  if (!parsed) return Error{parsed.error()};
  FenceNotice f;
  std::string err;
  if (!get_string(parsed.value(), "request_id", &f.request_id, &err, true) ||
      !get_string(parsed.value(), "service", &f.service, &err, false)) {
    return Error{err};
  }
  if (!is_uuid(f.request_id)) return Error{"field 'request_id' is not a UUID"};
  return f;
}

}  // namespace asyncops
