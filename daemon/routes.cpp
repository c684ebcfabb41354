#include "daemon/routes.h"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "daemon/saga_route.h"
#include "shared/json_limits.h"

namespace asyncops {
namespace {

using nlohmann::json;

bool segment_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

const char* json_type_name(const json& v) {
  if (v.is_string()) return "string";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_boolean()) return "boolean";
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  return "null";
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

const std::set<std::string> k_types = {"string", "integer", "number", "boolean", "object", "array"};
const std::set<std::string> k_methods = {"POST", "PUT", "PATCH", "DELETE"};

}  // namespace

Result<PathTemplate> PathTemplate::parse(const std::string& text) {
  if (text.empty() || text[0] != '/') return Error{"path '" + text + "' must start with '/'"};
  PathTemplate t;
  t.m_text = text;
  std::set<std::string> seen;
  for (std::string_view view : split(text)) {
    const std::string seg(view);
    if (seg.empty()) return Error{"path '" + text + "' has an empty segment"};
    Segment s;
    if (seg.front() == '{') {
      if (seg.back() != '}' || seg.size() < 3) return Error{"bad placeholder '" + seg + "'"};
      s.text = seg.substr(1, seg.size() - 2);
      s.placeholder = true;
      if (!seen.insert(s.text).second) return Error{"placeholder {" + s.text + "} repeats"};
    } else {
      for (char c : seg) {
        if (!segment_char_ok(c)) return Error{"path '" + text + "' has a bad character"};
      }
      s.text = seg;
    }
    t.m_segments.push_back(std::move(s));
  }
  return t;
}

PathTemplate::Segments PathTemplate::split(std::string_view path) {
  Segments out;
  if (path.empty() || path[0] != '/') return out;
  size_t i = 1;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

bool PathTemplate::match(const std::string& path, std::map<std::string, std::string>* params) const {
  return match(split(path), params);
}

bool PathTemplate::match(const Segments& segs, std::map<std::string, std::string>* params) const {
  // An empty segs is a path without its leading '/': a template always has
  // at least one segment ("/" itself splits into one empty segment).
  if (segs.empty() || segs.size() != m_segments.size()) return false;
  for (size_t i = 0; i < segs.size(); ++i) {
    const Segment& s = m_segments[i];
    if (s.placeholder) {
      if (segs[i].empty() || segs[i].size() > 128) return false;
      for (char c : segs[i]) {
        if (!segment_char_ok(c)) return false;
      }
    } else if (segs[i] != s.text) {
      return false;
    }
  }
  if (params) {
    params->clear();
    for (size_t i = 0; i < segs.size(); ++i) {
      if (m_segments[i].placeholder) (*params)[m_segments[i].text] = std::string(segs[i]);
    }
  }
  return true;
}

std::string PathTemplate::expand(const std::map<std::string, std::string>& params) const {
  std::string out;
  for (const Segment& s : m_segments) {
    out.push_back('/');
    if (s.placeholder) {
      auto it = params.find(s.text);
      out += it != params.end() ? it->second : "{" + s.text + "}";
    } else {
      out += s.text;
    }
  }
  return out;
}

std::vector<std::string> PathTemplate::placeholders() const {
  std::vector<std::string> out;
  for (const Segment& s : m_segments) {
    if (s.placeholder) out.push_back(s.text);
  }
  return out;
}

const char* RouteTable::default_json() {
  return R"JSON({
  "routes": [
    {
      "method": "POST", "path": "/users",
      "command": "create_user", "service": "users", "resource": "/users/{id}",
      "body": {
        "email": {"type": "string", "required": true, "min_length": 1, "max_length": 254},
        "name":  {"type": "string", "required": true, "min_length": 1, "max_length": 200}
      }
    },
    {
      "method": "PUT", "path": "/users/{id}",
      "command": "update_user", "service": "users", "resource": "/users/{id}",
      "body": {
        "email": {"type": "string", "min_length": 1, "max_length": 254},
        "name":  {"type": "string", "min_length": 1, "max_length": 200}
      }
    },
    {
      "method": "DELETE", "path": "/users/{id}",
      "command": "delete_user", "service": "users", "resource": ""
    }
  ]
})JSON";
}

Result<RouteTable> RouteTable::load_json(const std::string& text, const std::vector<std::string>& known_services) {
  // A local file, but it must not crash the daemon either (issue 15).
  JsonLimits lim;
  lim.max_bytes = k_max_routes_bytes;
  lim.max_depth = 64;
  lim.max_values = 1000000;
  BoundedJson parsed = parse_json_within(text, lim);
  if (parsed.violation == JsonViolation::invalid) return Error{"routes: not valid JSON"};
  if (parsed.violation != JsonViolation::none) return Error{"routes: refused: " + parsed.error};
  json j = std::move(parsed.value);
  if (!j.is_object() || !j.contains("routes") || !j["routes"].is_array()) {
    return Error{"routes: expected an object with a 'routes' array"};
  }
  RouteTable table;
  std::set<std::string> keys;
  size_t index = 0;
  for (const json& r : j["routes"]) {
    std::string where = "routes[" + std::to_string(index++) + "]";
    if (!r.is_object()) return Error{where + ": expected an object"};
    for (auto it = r.begin(); it != r.end(); ++it) {
      static const std::set<std::string> known = {"method", "path", "command", "service",
                                                  "resource", "body", "additional_fields",
                                                  "read", "steps"};
      if (!known.count(it.key())) return Error{where + ": unknown key '" + it.key() + "'"};
    }
    auto str = [&](const char* k) -> std::optional<std::string> {
      auto it = r.find(k);
      if (it == r.end() || !it->is_string()) return std::nullopt;
      return it->get<std::string>();
    };
    Route route;
    auto method = str("method");
    if (!method || !k_methods.count(*method)) {
      return Error{where + ".method: must be one of POST, PUT, PATCH, DELETE"};
    }
    route.method = *method;
    auto path = str("path");
    if (!path) return Error{where + ".path: required string"};
    auto pt = PathTemplate::parse(*path);
    if (!pt) return Error{where + ".path: " + pt.error()};
    route.path = pt.value();
    auto command = str("command");
    if (!command || command->empty()) return Error{where + ".command: required string"};
    route.command = *command;
    if (r.contains("steps")) {
      // A saga: each step names its own service (docs/design/sagas.md §1).
      std::string name = where + " (" + route.method + " " + route.path.text() + ")";
      if (r.contains("service")) {
        return Error{name + ": a route with steps has no service: each step names its own"};
      }
      auto plan = parse_saga_steps(r["steps"], name, route.command, known_services);
      if (!plan) return Error{plan.error()};
      route.steps = std::move(plan.value());
      route.service = route.steps.back().service;
    } else {
      auto service = str("service");
      if (!service || service->empty()) return Error{where + ".service: required string"};
      for (char c : *service) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
          return Error{where + ".service: only letters, digits, '_' and '-'"};
        }
      }
      route.service = *service;
    }
    if (r.contains("resource")) {
      auto res = str("resource");
      if (!res) return Error{where + ".resource: must be a string"};
      if (!res->empty()) {
        auto rt = PathTemplate::parse(*res);
        if (!rt) return Error{where + ".resource: " + rt.error()};
        route.resource = rt.value();
      }
    }
    route.has_body = route.method != "DELETE" || r.contains("body");
    if (r.contains("read")) {
      auto read = str("read");
      if (!read || (*read != "public" && *read != "owner")) return Error{where + ".read: must be \"public\" or \"owner\""};
      route.read = *read;
    }
    if (r.contains("additional_fields")) {
      if (!r["additional_fields"].is_boolean()) {
        return Error{where + ".additional_fields: must be a boolean"};
      }
      route.additional_fields = r["additional_fields"].get<bool>();
    }
    if (r.contains("body")) {
      if (!r["body"].is_object()) return Error{where + ".body: must be an object"};
      for (auto it = r["body"].begin(); it != r["body"].end(); ++it) {
        std::string fw = where + ".body." + it.key();
        const json& f = it.value();
        if (!f.is_object()) return Error{fw + ": must be an object"};
        FieldRule rule;
        if (!f.contains("type") || !f["type"].is_string() || !k_types.count(f["type"].get<std::string>())) {
          return Error{fw + ".type: one of string, integer, number, boolean, object, array"};
        }
        rule.type = f["type"];
        for (auto fi = f.begin(); fi != f.end(); ++fi) {
          const std::string& k = fi.key();
          if (k == "type") continue;
          if (k == "required") {
            if (!fi->is_boolean()) return Error{fw + ".required: must be a boolean"};
            rule.required = fi->get<bool>();
          } else if (k == "min_length" || k == "max_length") {
            if (!fi->is_number_unsigned()) return Error{fw + "." + k + ": must be a whole number"};
            (k == "min_length" ? rule.min_length : rule.max_length) = fi->get<size_t>();
          } else {
            return Error{fw + ": unknown key '" + k + "'"};
          }
        }
        route.fields[it.key()] = rule;
      }
    }
    std::string key = route.method + " " + route.path.text();
    if (!keys.insert(key).second) return Error{where + ": duplicate route " + key};
    table.m_routes.push_back(std::move(route));
  }
  if (table.m_routes.empty()) return Error{"routes: the table is empty"};
  // Routes writing one collection must not disagree on who may read it.
  for (const std::string& c : table.collections()) {
    std::string seen;
    for (const Route& rt : table.m_routes) {
      if (rt.read.empty() || !rt.resource || rt.resource->text().rfind(c + "/", 0) != 0) continue;
      if (!seen.empty() && seen != rt.read) return Error{"routes: the routes of " + c + " disagree on \"read\""};
      seen = rt.read;
    }
  }
  return table;
}

Result<RouteTable> RouteTable::load_file(const std::string& path, const std::vector<std::string>& known_services) {
  std::ifstream in(path);
  if (!in) return Error{"routes: cannot read " + path};
  // Read one byte past the limit, so that a larger file is refused
  // without being read whole.
  std::string text(k_max_routes_bytes + 1, '\0');
  in.read(&text[0], static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  auto t = load_json(text, known_services);
  if (!t) return Error{path + ": " + t.error()};
  return t;
}

std::vector<std::string> RouteTable::services() const {
  std::vector<std::string> out;
  auto add = [&out](const std::string& service) {
    if (std::find(out.begin(), out.end(), service) == out.end()) out.push_back(service);
  };
  for (const Route& r : m_routes) {
    if (r.steps.empty()) {
      add(r.service);
    } else {
      for (const std::string& service : saga_services(r.steps)) add(service);
    }
  }
  return out;
}

std::string route_name(const Route& route) { return route.method + " " + route.path.text(); }

std::vector<std::string> RouteTable::collections() const {
  std::vector<std::string> out;
  for (const Route& r : m_routes) {
    if (!r.resource) continue;
    const std::string& t = r.resource->text();
    auto slash = t.rfind('/');
    if (slash == 0 || slash == std::string::npos) continue;
    if (t.substr(slash + 1).front() != '{') continue;
    std::string collection = t.substr(0, slash);
    if (collection.find('{') != std::string::npos) continue;
    if (std::find(out.begin(), out.end(), collection) == out.end()) out.push_back(collection);
  }
  return out;
}

std::string RouteTable::read_policy(const std::string& collection) const {
  for (const Route& r : m_routes) {
    if (!r.read.empty() && r.resource && r.resource->text().rfind(collection + "/", 0) == 0) return r.read;
  }
  return "owner";
}

bool creates_resource(const Route& route) {
  if (!route.resource) return false;
  std::vector<std::string> bound = route.path.placeholders();
  for (const std::string& ph : route.resource->placeholders()) {
    if (std::find(bound.begin(), bound.end(), ph) == bound.end()) return true;
  }
  return false;
}

bool RouteTable::is_generated_path(const std::string& path) const {
  for (const Route& r : m_routes) {
    if (creates_resource(r) && r.resource->match(path, nullptr)) return true;
  }
  return false;
}

std::vector<FieldError> validate_body(const Route& route, const json& body) {
  std::vector<FieldError> errors;
  if (!body.is_object()) {
    errors.push_back({"", "the body must be a JSON object"});
    return errors;
  }
  for (const auto& [name, rule] : route.fields) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null()) {
      if (rule.required) errors.push_back({"/" + name, "is required"});
      continue;
    }
    const char* actual = json_type_name(*it);
    bool type_ok = rule.type == actual || (rule.type == "number" && it->is_number());
    if (!type_ok) {
      errors.push_back({"/" + name, std::string("must be of type ") + rule.type + ", not " + actual});
      continue;
    }
    size_t len = it->is_string() ? utf8_length(it->get_ref<const std::string&>())
                 : (it->is_array() || it->is_object()) ? it->size() : 0;
    if (rule.min_length && len < rule.min_length) {
      errors.push_back({"/" + name, "must have at least " + std::to_string(rule.min_length) +
                                        (it->is_string() ? " characters" : " items")});
    } else if (rule.max_length && len > rule.max_length) {
      errors.push_back({"/" + name, "must have at most " + std::to_string(rule.max_length) +
                                        (it->is_string() ? " characters" : " items")});
    }
  }
  if (!route.additional_fields) {
    for (auto it = body.begin(); it != body.end(); ++it) {
      if (!route.fields.count(it.key())) {
        std::string key = it.key().substr(0, 64);
        errors.push_back({"/" + key, "is not a known field"});
      }
    }
  }
  return errors;
}

}  // namespace asyncops
