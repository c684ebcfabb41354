#pragma once
// The route table: configuration, not code. It maps METHOD + path template to
// a command, the service that handles it, the resource the operation is
// about, and the shape of the body. The daemon has no business logic: it
// checks shape (types, required fields, lengths) and leaves meaning to the
// services.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/problem.h"
#include "shared/result.h"
#include "store/saga.h"

namespace asyncops {

// "/users/{id}": literal segments and {name} placeholders, one segment each.
class PathTemplate {
 public:
  static Result<PathTemplate> parse(const std::string& text);
  // Fills params on a match. A placeholder matches one non-empty segment of
  // at most 128 characters from [A-Za-z0-9._~-].
  bool match(const std::string& path, std::map<std::string, std::string>* params) const;
  // A path's segments, views into it; empty for a path that does not start
  // with '/' (which no template matches). For matching one path against
  // many templates without splitting it again for each.
  using Segments = std::vector<std::string_view>;
  static Segments split(std::string_view path);
  // match() on a path split by split(); params may be null.
  bool match(const Segments& segs, std::map<std::string, std::string>* params) const;
  // Substitutes params; placeholders without a value are left as they are.
  std::string expand(const std::map<std::string, std::string>& params) const;
  std::vector<std::string> placeholders() const;
  const std::string& text() const { return m_text; }

 private:
  struct Segment {
    std::string text;
    bool placeholder = false;
  };
  std::string m_text;
  std::vector<Segment> m_segments;
};

struct FieldRule {
  std::string type;  // string, integer, number, boolean, object, array
  bool required = false;
  size_t min_length = 0;
  size_t max_length = 0;  // 0: no limit
};

struct Route {
  std::string method;  // POST, PUT, PATCH or DELETE
  PathTemplate path;
  std::string command;
  // The service that runs the command; for a saga route (steps not empty),
  // which names no service of its own, the last step's: the one that makes
  // the resource (docs/design/sagas.md §1).
  std::string service;
  // A saga route's steps (issue 14), checked by parse_saga_steps; empty for
  // a route that runs one command.
  std::vector<saga::StepPlan> steps;
  // What X-Resource names: empty for deletes. Placeholders the path does not
  // bind (e.g. {id} on POST /users) are generated as UUIDv7 before dispatch.
  std::optional<PathTemplate> resource;
  bool has_body = true;
  bool additional_fields = false;
  // Who may read the resource collection this route writes (GET /users,
  // GET /users/{id}): "owner" (the principal whose command created the
  // resource, or an admin) or "public" (any authenticated caller). "" when
  // the route does not say: "owner". Writes are always the owner's (see
  // OwnershipCheck in store.h).
  std::string read;
  std::map<std::string, FieldRule> fields;
};

// A routes file larger than this is refused (4 MiB); it may nest 64 levels.
inline constexpr size_t k_max_routes_bytes = 4 << 20;

class RouteTable {
 public:
  // The embedded default: the users service.
  static const char* default_json();
  // known_services, when not empty, lists the services a saga's step may
  // name (parse_saga_steps); empty: any well-formed name.
  static Result<RouteTable> load_json(const std::string& text, const std::vector<std::string>& known_services = {});
  static Result<RouteTable> load_file(const std::string& path, const std::vector<std::string>& known_services = {});

  const std::vector<Route>& routes() const { return m_routes; }
  // Distinct services, in route order; a saga route's are its steps'
  // services, in step order.
  std::vector<std::string> services() const;
  // Collections readable from the read model, e.g. "/users", from the
  // resource templates of the form /collection/{placeholder}.
  std::vector<std::string> collections() const;
  // "public" or "owner" (the default) for a collection from collections().
  std::string read_policy(const std::string& collection) const;
  // Whether path is one that a creating route makes (it matches the
  // resource template of a route for which creates_resource holds). Its id
  // is generated at accept, so it exists only once a create has claimed it.
  bool is_generated_path(const std::string& path) const;

 private:
  std::vector<Route> m_routes;
};

// The route's name in errors and logs: "POST /orders".
std::string route_name(const Route& route);

// Whether the route makes a new resource: its resource template has a
// placeholder that its path does not bind, which the gateway fills with a
// fresh UUIDv7 (POST /users -> /users/{id}).
bool creates_resource(const Route& route);

// Checks a parsed body against a route's rules. Returns the field errors.
std::vector<FieldError> validate_body(const Route& route, const nlohmann::json& body);

}  // namespace asyncops
