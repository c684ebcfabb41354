#include "daemon/gateway.h"
#include "shared/timeline.h"

#include "daemon/signalr_hub.h"
#include "daemon/static_files.h"

#include <algorithm>
#include <cctype>
#include <future>

#include "shared/base64url.h"
#include "daemon/metrics.h"
#include "shared/clock.h"
#include "shared/ids.h"
#include "shared/log.h"
#include "shared/mutex.h"
#include "shared/json_limits.h"
#include "shared/json_text.h"

namespace asyncops {
namespace {

using nlohmann::json;

ApiReply json_reply(int status, const json& body) {
  ApiReply r;
  r.status = status;
  r.body = json_text(body);
  return r;
}

// A body already serialised as JSON.
ApiReply json_text_reply(int status, std::string body) {
  ApiReply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiReply bad_query(const std::string& detail) {
  return problem_reply(400, detail, "invalid_query");
}

// The ?state= and ?name= filters that the operation list and the event
// stream share: takes k=v into *state or *name when k is one of them.
// Returns the 400 for a state that is not a state's name, else nothing.
std::optional<ApiReply> take_state_or_name(const std::string& k, const std::string& v,
                                           std::optional<OpState>* state, std::string* name) {
  if (k == "state") {
    auto s = parse_state(v);
    if (!s) return bad_query("state must be one of " + state_names_text());
    *state = s;
  } else if (k == "name") {
    *name = v;
  }
  return std::nullopt;
}

ApiReply store_unavailable(const std::string& detail) {
  ApiReply r = problem_reply(503, detail, "store_unavailable");
  r.headers.push_back({"Retry-After", "1"});
  return r;
}

// A reply that comes after the work it answers is done elsewhere (a
// commit, a dispatcher decision), without a thread waiting for it: the
// server asks for it with ApiReply::later, the work hands over its
// builder with settle(); whichever comes second passes the builder on.
class Deferred {
 public:
  Deferred() : m_meet(std::make_shared<Meeting>()) {}
  // Call exactly once, from any thread, with the reply's builder.
  std::function<void(Finish)> settle() const {
    return [meet = m_meet](Finish f) { meet->set(std::move(f)); };
  }
  // The pending reply to return from the handler.
  ApiReply reply(int status = 202) const {
    ApiReply r;
    r.status = status;
    r.later = [meet = m_meet](std::function<void(Finish)> deliver) { meet->on(std::move(deliver)); };
    return r;
  }

 private:
  struct Meeting {
    Mutex mutex;
    std::optional<Finish> finish GUARDED_BY(mutex);
    std::function<void(Finish)> deliver GUARDED_BY(mutex);
    void set(Finish f) {
      std::function<void(Finish)> d;
      {
        MutexLock lock(&mutex);
        if (!deliver) {
          finish = std::move(f);
          return;
        }
        d = std::move(deliver);
      }
      d(std::move(f));
    }
    void on(std::function<void(Finish)> d) {
      Finish f;
      {
        MutexLock lock(&mutex);
        if (!finish) {
          deliver = std::move(d);
          return;
        }
        f = std::move(*finish);
      }
      d(std::move(f));
    }
  };
  std::shared_ptr<Meeting> m_meet;
};

// Parses a whole decimal number in [lo, hi]. (The callers answer with
// their own problem detail, which names the parameter.)
Result<long> parse_int(const std::string& s, long lo, long hi) {
  const Error outside{"not a whole number from " + std::to_string(lo) + " to " + std::to_string(hi)};
  if (s.empty() || s.size() > 12) return outside;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return outside;
  }
  long v = std::stol(s);
  if (v < lo || v > hi) return outside;
  return v;
}

bool is_json_media_type(const std::string& content_type) {
  std::string t = content_type.substr(0, content_type.find(';'));
  t.erase(std::remove_if(t.begin(), t.end(), [](unsigned char c) { return std::isspace(c); }),
          t.end());
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t == "application/json" ||
         (t.rfind("application/", 0) == 0 && t.size() > 5 && t.substr(t.size() - 5) == "+json");
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// A compiled-in file (the console, the JavaScript client). The console is
// locked down: its own origin only, never framed, no referrer.
ApiReply static_file(const StaticFile& f, const ApiRequest& req) {
  ApiReply r;
  std::string type = f.media_type;
  if (type.rfind("text/", 0) == 0) type += "; charset=utf-8";
  r.content_type = type;
  r.headers.push_back({"ETag", f.etag});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  if (std::string(f.media_type) == "text/html") {
    r.headers.push_back({"Content-Security-Policy",
                         "default-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'"});
    r.headers.push_back({"X-Frame-Options", "DENY"});
  }
  if (req.header("if-none-match") == f.etag) {
    r.status = 304;
    return r;
  }
  r.body.assign(reinterpret_cast<const char*>(f.data), f.size);
  return r;
}

}  // namespace

bool sees_all(const ApiRequest& req) { return req.role.empty() || req.role == "admin"; }

bool may_write(const ApiRequest& req) { return req.role.empty() || req.role == "submitter" || req.role == "admin"; }

bool is_loopback_address(const std::string& addr) {
  if (addr.empty() || addr == "::1") return true;
  std::string a = addr;
  if (a.rfind("::ffff:", 0) == 0) a = a.substr(7);
  return a.rfind("127.", 0) == 0;
}

ApiReply problem_reply(const Problem& p) {
  ApiReply r;
  r.status = p.status;
  r.content_type = k_problem_media_type;
  r.body = to_json(p);
  return r;
}

ApiReply problem_reply(int status, std::string detail, std::string code) {
  return problem_reply(make_problem(status, std::move(detail), std::move(code)));
}

ApiReply operation_not_found(const std::string& id) {
  return problem_reply(404, "no operation " + id, "operation_not_found");
}

ApiReply internal_error() {
  return problem_reply(500, "internal error", "internal_error");
}

ApiReply uri_too_long(size_t max_url_bytes) {
  return problem_reply(
      414, "the request target is longer than " + std::to_string(max_url_bytes) + " bytes",
      "uri_too_long");
}

ApiReply headers_too_large(size_t max_header_bytes) {
  return problem_reply(
      431, "the request headers are larger than " + std::to_string(max_header_bytes) + " bytes",
      "headers_too_large");
}

ApiReply body_too_large(size_t max_body_bytes) {
  return problem_reply(413, "the body is larger than " + std::to_string(max_body_bytes) + " bytes",
                       "body_too_large");
}

std::map<std::string, std::string> parse_prefer(const std::string& header) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start <= header.size()) {
    size_t comma = header.find(',', start);
    if (comma == std::string::npos) comma = header.size();
    std::string item = header.substr(start, comma - start);
    item = item.substr(0, item.find(';'));  // parameters are not used
    size_t eq = item.find('=');
    std::string name = trim(item.substr(0, eq));
    std::string value = eq == std::string::npos ? "" : trim(item.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (!name.empty() && !out.count(name)) out[name] = value;
    start = comma + 1;
  }
  return out;
}

Gateway::Gateway(RouteTable routes, GroupCommitter& committer, ReaderPool& readers, ChangeHub& hub,
                 GatewayOptions options, GatewayServices services)
    : m_routes(std::move(routes)),
      m_committer(committer),
      m_readers(readers),
      m_hub(hub),
      m_options(options),
      m_services(std::move(services)) {
  SignalrOptions hub_options;
  hub_options.ping_interval = m_options.hub_ping_interval;
  m_signalr = std::make_unique<SignalrHub>(m_hub, m_readers, hub_options);
  auto tmpl = [](const std::string& t) { return PathTemplate::parse(t).value(); };
  m_router.add("GET", tmpl("/healthz"), [](const ApiRequest&, const Params&) {
    return json_reply(200, {{"status", "ok"}});
  });
  m_router.add("GET", tmpl("/readyz"), [this](const ApiRequest&, const Params&) {
    std::string cause = m_services.not_ready ? m_services.not_ready() : "";
    if (!cause.empty()) {
      ApiReply r = problem_reply(503, "not ready: " + cause, "not_ready");
      r.headers.push_back({"Retry-After", "1"});
      return r;
    }
    return json_reply(200, {{"status", "ready"}});
  });
  m_router.add("GET", tmpl("/metrics"), [this](const ApiRequest&, const Params&) {
    ApiReply r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = render_metric("asyncops_sse_clients", "gauge", "Open Server-Sent Events streams and waiting requests.",
                           static_cast<double>(m_hub.subscribers()));
    if (m_services.metrics) r.body += m_services.metrics();
    return r;
  });
  m_router.add("GET", tmpl("/operations"),
               [this](const ApiRequest& r, const Params&) { return list_operations(r); });
  m_router.add("GET", tmpl("/operations/{id}"),
               [this](const ApiRequest& r, const Params& p) { return get_operation(r, p); });
  m_router.add("POST", tmpl("/operations/{id}/cancel"),
               [this](const ApiRequest& r, const Params& p) { return cancel_operation(r, p); });
  m_router.add("POST", tmpl("/operations/{id}/retry"),
               [this](const ApiRequest& r, const Params& p) { return retry_operation(r, p); });
  m_router.add("DELETE", tmpl("/operations/{id}"),
               [this](const ApiRequest& r, const Params& p) { return forget_operation(r, p); });
  m_router.add("GET", tmpl("/workers"), [this](const ApiRequest&, const Params&) {
    return json_reply(200, {{"items", m_services.workers ? m_services.workers() : json::array()}});
  });
  m_router.add("GET", tmpl("/stats"), [this](const ApiRequest& r, const Params&) { return operation_stats(r); });
  m_router.add("GET", tmpl("/operations/{id}/history"),
               [this](const ApiRequest& r, const Params& p) { return operation_history(r, p); });
  m_router.add("GET", tmpl("/operations/{id}/events"),
               [this](const ApiRequest& r, const Params& p) { return operation_events(r, p); });
  m_router.add("GET", tmpl("/events"), [this](const ApiRequest& r, const Params&) { return all_events(r); });
  m_router.add("GET", tmpl("/ws"), [this](const ApiRequest& r, const Params&) { return websocket(r); });
  m_router.add("POST", tmpl("/tickets"), [this](const ApiRequest& r, const Params&) { return issue_ticket(r); });
  for (const StaticFile* f = static_files_begin(); f != static_files_end(); ++f) {
    m_router.add("GET", tmpl(f->path), [f](const ApiRequest& r, const Params&) { return static_file(*f, r); });
  }
  m_router.add("POST", tmpl("/hubs/operations/negotiate"),
               [this](const ApiRequest& r, const Params&) { return hub_negotiate(r); });
  for (const char* method : {"GET", "POST", "DELETE"}) {
    m_router.add(method, tmpl("/hubs/operations"), [this](const ApiRequest& r, const Params&) { return hub_request(r); });
  }
  for (const std::string& c : m_routes.collections()) {
    m_router.add("GET", tmpl(c),
                 [this, c](const ApiRequest& r, const Params&) { return list_resources(c, r); });
    m_router.add("GET", tmpl(c + "/{id}"), [this, c](const ApiRequest& r, const Params& p) {
      return get_resource(c, r, p);
    });
  }
  for (const Route& route : m_routes.routes()) {
    const Route* rp = &route;
    m_router.add(route.method, route.path, [this, rp](const ApiRequest& r, const Params& p) {
      return accept_command(*rp, r, p);
    });
  }
}

namespace {
ApiReply unauthorized(const std::string& detail, bool invalid) {
  ApiReply r = problem_reply(401, detail, invalid ? "invalid_token" : "unauthorized");
  r.headers.push_back({"WWW-Authenticate", invalid ? "Bearer realm=\"asyncops\", error=\"invalid_token\""
                                                   : "Bearer realm=\"asyncops\""});
  return r;
}
}  // namespace

std::optional<ApiReply> Gateway::admit(ApiRequest& req) {
  // Limits first: they do not depend on who is asking.
  size_t target = req.target_bytes ? req.target_bytes : req.path.size();
  if (target > m_options.max_url_bytes) {
    return uri_too_long(m_options.max_url_bytes);
  }
  size_t header_bytes = 0;
  for (const auto& [k, v] : req.headers) header_bytes += k.size() + v.size() + 4;
  if (header_bytes > m_options.max_header_bytes) {
    return headers_too_large(m_options.max_header_bytes);
  }
  req.owner.clear();
  req.role.clear();
  // Health, the console's files and the JavaScript client need no token:
  // the console asks for one itself.
  bool health = req.path == "/healthz" || req.path == "/readyz" ||
                ((req.method == "GET" || req.method == "HEAD") && find_static_file(req.path));
  // A browser cannot set Authorization on EventSource or WebSocket: a
  // stream also takes ?access_token= (SignalR's convention) or a ticket
  // (POST /tickets). Nothing else does. Both are taken out of the query
  // here, so that no handler sees, echoes or logs them.
  std::string authorization = req.header("authorization");
  std::optional<std::string> query_token, ticket;
  if (auto it = req.query.find("access_token"); it != req.query.end()) {
    query_token = std::move(it->second);
    req.query.erase(it);
  }
  if (auto it = req.query.find("ticket"); it != req.query.end()) {
    ticket = std::move(it->second);
    req.query.erase(it);
  }
  bool stream = is_stream_request(req);
  if (stream && authorization.empty() && query_token) authorization = "Bearer " + *query_token;
  AuthDecision d;
  if (m_services.authenticate) d = m_services.authenticate(authorization);
  if (stream && authorization.empty() && ticket && d.kind == AuthDecision::missing) {
    auto grant = m_tickets.redeem(*ticket);
    auto role = grant ? parse_role(grant->role) : std::nullopt;
    if (!role) return unauthorized("the stream ticket is not valid (unknown, used, or older than 60 s)", true);
    d.kind = AuthDecision::ok;
    d.principal = grant->principal;
    d.role = *role;
  } else if (stream && ticket) {
    m_tickets.redeem(*ticket);  // single use, whatever else authenticated this request
  }
  switch (d.kind) {
    case AuthDecision::open:
      // No tokens: only this host may call (see the start log).
      if (!is_loopback_address(req.remote_addr)) {
        return problem_reply(403,
                             "no API tokens are configured, so only loopback clients are served",
                             "loopback_only");
      }
      return std::nullopt;
    case AuthDecision::missing:
      if (health) return std::nullopt;
      return unauthorized("this server needs an API token: Authorization: Bearer <token>", false);
    case AuthDecision::invalid:
      if (health) return std::nullopt;
      return unauthorized("the API token is not valid (unknown, revoked or malformed)", true);
    case AuthDecision::ok:
      break;
  }
  req.owner = d.principal;
  req.role = to_string(d.role);
  if (m_services.rate_limit) {
    if (int wait = m_services.rate_limit(d.principal); wait > 0) {
      ApiReply r = problem_reply(429, "too many requests for " + d.principal + "; slow down",
                                 "rate_limited");
      r.headers.push_back({"Retry-After", std::to_string(wait)});
      return r;
    }
  }
  return std::nullopt;
}

bool is_stream_request(const ApiRequest& req) {
  if (req.method != "GET") return false;
  const std::string& p = req.path;
  if (p == "/events" || p == "/ws" || p == "/hubs/operations") return true;
  // /operations/{id}/events
  const std::string prefix = "/operations/", suffix = "/events";
  return p.size() > prefix.size() + suffix.size() && p.compare(0, prefix.size(), prefix) == 0 &&
         p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         p.find('/', prefix.size()) == p.size() - suffix.size();
}

ApiReply Gateway::issue_ticket(const ApiRequest& req) {
  auto ticket = m_tickets.issue({req.owner, req.role});
  if (!ticket) {
    ApiReply r = problem_reply(503, "too many stream tickets are outstanding; try again shortly", "too_many_tickets");
    r.headers.push_back({"Retry-After", "60"});
    return r;
  }
  return json_reply(200, {{"ticket", *ticket},
                          {"expires_in", static_cast<int>(TicketBook::k_lifetime.count())}});
}

Gateway::~Gateway() = default;

ApiReply Gateway::hub_negotiate(const ApiRequest& req) {
  WebSocketGrant grant;
  if (!sees_all(req)) grant.owner = req.owner;
  auto negotiated = m_signalr->negotiate(req.owner, grant);
  if (!negotiated) {
    ApiReply r = problem_reply(503, "too many hub connections are open; try again shortly",
                               "too_many_hub_connections");
    r.headers.push_back({"Retry-After", "5"});
    return r;
  }
  return json_reply(200, *negotiated);
}

ApiReply Gateway::hub_request(const ApiRequest& req) {
  auto id = req.query.find("id");
  if (id == req.query.end() || id->second.empty()) {
    return problem_reply(400, "a hub request names its connection: ?id=<connectionToken from negotiate>",
                         "invalid_query");
  }
  // Another principal's connection is as unknown as a made-up one.
  auto connection = m_signalr->find(id->second, req.owner);
  if (!connection) {
    return problem_reply(404, "no hub connection with this id: negotiate first (POST /hubs/operations/negotiate)",
                         "hub_connection_not_found");
  }
  if (req.method == "DELETE") {
    m_signalr->remove(id->second);
    ApiReply r;
    r.status = 202;
    r.content_type = "";
    return r;
  }
  if (req.method == "POST") {
    // The SSE transport's messages to the hub.
    constexpr size_t k_max_send = 64 * 1024;
    if (req.body.size() > k_max_send) {
      return problem_reply(413, "a hub message is at most 64 KiB", "body_too_large");
    }
    connection->receive(req.body);
    ApiReply r;
    r.content_type = "text/plain";
    return r;
  }
  std::string upgrade = req.header("upgrade");
  std::transform(upgrade.begin(), upgrade.end(), upgrade.begin(), [](unsigned char c) { return std::tolower(c); });
  bool websocket = upgrade.find("websocket") != std::string::npos;
  bool sse = req.header("accept").find("text/event-stream") != std::string::npos;
  if (!websocket && !sse) {
    return problem_reply(400,
                         "the hub's transports are WebSockets and ServerSentEvents (Accept: "
                         "text/event-stream); long polling is not offered",
                         "unsupported_transport");
  }
  if (!connection->claim()) {
    return problem_reply(409, "this hub connection already has a transport", "hub_connection_taken");
  }
  ApiReply r;
  if (websocket) {
    r.status = 101;
    r.content_type = "";
    WebSocketGrant grant;
    grant.channel = m_signalr->transport(connection);
    r.websocket = std::move(grant);
  } else {
    r.content_type = "text/event-stream";
    r.headers.push_back({"X-Accel-Buffering", "no"});
    r.push_sse = m_signalr->transport(connection);
  }
  return r;
}

std::optional<OperationRecord> Gateway::visible_operation(const ApiRequest& req, const std::string& id) {
  auto op = m_readers.acquire()->get_operation(id);
  if (op && !sees_all(req) && op->owner != req.owner) return std::nullopt;
  return op;
}

bool is_served_method(const std::string& m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE" || m == "OPTIONS";
}

ApiReply Gateway::begin(ApiRequest req) {
  ApiReply reply;
  try {
    if (!is_served_method(req.method)) {
      // RFC 9110 15.5.6: 405 with what the resource does allow (TRACE and
      // CONNECT are never served: nothing here echoes or tunnels).
      auto m = m_router.match(req.method, req.path);
      std::string allow;
      for (const auto& a : m.allow) allow += (allow.empty() ? "" : ", ") + a;
      if (allow.empty()) allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
      reply = problem_reply(
          405, req.method.substr(0, 20) + " is not a method this API serves; allowed: " + allow,
          "method_not_allowed");
      reply.headers.push_back({"Allow", allow});
      return reply;
    }
    if (req.method == "OPTIONS" && !req.header("origin").empty() &&
        !req.header("access-control-request-method").empty()) {
      return preflight(req);
    }
    if (auto refused = admit(req)) {
      add_cors(req, &*refused);
      return *refused;
    }
    auto m = m_router.match(req.method, req.path);  // HEAD is GET without the body (the server drops it)
    if (m.kind == decltype(m)::not_found) {
      reply = problem_reply(404, "no resource at " + req.path.substr(0, 200), "not_found");
    } else if (m.kind == decltype(m)::method_not_allowed) {
      std::string allow;
      for (const auto& a : m.allow) allow += (allow.empty() ? "" : ", ") + a;
      reply = problem_reply(
          405, req.method + " is not allowed on " + req.path.substr(0, 200) + "; allowed: " + allow,
          "method_not_allowed");
      reply.headers.push_back({"Allow", allow});
    } else {
      reply = (*m.handler)(req, m.params);
    }
  } catch (const std::exception& e) {
    log_error("request failed", {{"method", req.method}, {"path", req.path}, {"error", e.what()}});
    reply = internal_error();
  }
  decorate(req, &reply);
  return reply;
}

namespace {
// Runs a deferred reply's builder; a throw becomes a 500 problem.
ApiReply run_finish(const Finish& finish) {
  try {
    return finish();
  } catch (const std::exception& e) {
    log_error("a deferred reply failed", {{"error", e.what()}});
    return internal_error();
  }
}
}  // namespace

void Gateway::decorate(const ApiRequest& req, ApiReply* reply) const {
  add_cors(req, reply);
  if (!reply->later && !reply->wait) return;
  // What a pending reply turns into carries the CORS headers too.
  ApiRequest cors_only;
  cors_only.headers["origin"] = req.header("origin");
  auto wrap = [this, cors_only](Finish f) -> Finish {
    return [this, cors_only, f = std::move(f)] {
      ApiReply r = run_finish(f);
      decorate(cors_only, &r);
      return r;
    };
  };
  if (reply->later) {
    reply->later = [later = std::move(reply->later), wrap](std::function<void(Finish)> deliver) {
      later([deliver = std::move(deliver), wrap](Finish f) { deliver(wrap(std::move(f))); });
    };
  }
  if (reply->wait) {
    auto w = std::make_shared<ApiWait>(*reply->wait);
    w->finish = wrap(std::move(w->finish));
    if (w->finish_ended) {
      w->finish_ended = [wrap, f = std::move(w->finish_ended)](const OperationRecord& op) {
        return wrap([&f, &op] { return f(op); })();
      };
    }
    reply->wait = std::move(w);
  }
}

ApiReply Gateway::handle(ApiRequest req) { return resolve_blocking(begin(std::move(req))); }

ApiReply Gateway::resolve_blocking(ApiReply reply) {
  for (;;) {
    if (reply.later) {
      std::promise<Finish> promised;
      auto future = promised.get_future();
      auto later = std::move(reply.later);
      later([&promised](Finish f) { promised.set_value(std::move(f)); });
      reply = run_finish(future.get());
      continue;
    }
    if (reply.wait) {
      std::shared_ptr<ApiWait> w = std::move(reply.wait);
      // Subscribe first, then read: a change in between still wakes us.
      auto sub = m_hub.subscribe(w->op_id);
      while (!w->ready() && std::chrono::steady_clock::now() < w->deadline && !m_hub.is_shut_down()) {
        sub->wait(w->deadline);
      }
      reply = run_finish(w->finish);
      continue;
    }
    return reply;
  }
}

std::shared_ptr<ApiWait> Gateway::wait_for(const std::string& id, std::chrono::steady_clock::time_point deadline,
                                           std::function<ApiReply(std::optional<OperationRecord>)> finish,
                                           bool ended_only) {
  auto w = std::make_shared<ApiWait>();
  if (ended_only) {
    w->finish_ended = [id, finish](const OperationRecord& op) {
      timeline_mark("wait_answered", id);
      return finish(op);
    };
  }
  w->op_id = id;
  w->deadline = deadline;
  w->ready = [this, id] {
    auto op = m_readers.acquire()->get_operation(id);
    return !op || is_terminal(op->state);
  };
  w->finish = [this, id, finish = std::move(finish)] {
    timeline_mark("wait_answered", id);
    return finish(m_readers.acquire()->get_operation(id));
  };
  return w;
}

ApiReply Gateway::websocket(const ApiRequest& req) {
  std::string upgrade = req.header("upgrade");
  std::transform(upgrade.begin(), upgrade.end(), upgrade.begin(), [](unsigned char c) { return std::tolower(c); });
  if (upgrade.find("websocket") == std::string::npos) {
    ApiReply r = problem_reply(426, "/ws speaks WebSocket only: send Upgrade: websocket",
                               "upgrade_required");
    r.headers.push_back({"Upgrade", "websocket"});
    r.headers.push_back({"Connection", "Upgrade"});
    return r;
  }
  ApiReply r;
  r.status = 101;
  r.content_type = "";
  WebSocketGrant grant;
  if (!sees_all(req)) grant.owner = req.owner;
  r.websocket = grant;
  return r;
}

namespace {
bool origin_allowed(const std::vector<std::string>& allowed, const std::string& origin) {
  for (const auto& a : allowed) {
    if (a == "*" || a == origin) return true;
  }
  return false;
}
}  // namespace

void Gateway::add_cors(const ApiRequest& req, ApiReply* reply) const {
  std::string origin = req.header("origin");
  if (origin.empty() || !origin_allowed(m_options.cors_origins, origin)) return;
  reply->headers.push_back({"Access-Control-Allow-Origin", origin});
  reply->headers.push_back({"Vary", "Origin"});
  reply->headers.push_back({"Access-Control-Expose-Headers",
                            "X-Operation, X-Resource, Location, Operation-Location, Retry-After, "
                            "Preference-Applied, Idempotent-Replayed"});
}

ApiReply Gateway::preflight(const ApiRequest& req) {
  std::string origin = req.header("origin");
  if (!origin_allowed(m_options.cors_origins, origin)) {
    return problem_reply(403, "origin " + origin.substr(0, 100) + " is not allowed",
                         "cors_forbidden");
  }
  ApiReply r;
  r.status = 204;
  r.content_type = "";
  r.headers = {{"Access-Control-Allow-Origin", origin},
               {"Vary", "Origin"},
               {"Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE"},
               {"Access-Control-Allow-Headers", "Content-Type, Prefer, Last-Event-ID, Idempotency-Key, Authorization"},
               {"Access-Control-Max-Age", "600"}};
  return r;
}

namespace {
// Last-Event-ID from the header, or ?last_event_id= for clients that cannot
// set headers. -1 when absent; an error when malformed.
Result<int64_t> last_event_id(const ApiRequest& req) {
  std::string v = req.header("last-event-id");
  if (auto it = req.query.find("last_event_id"); v.empty() && it != req.query.end()) v = it->second;
  if (v.empty()) return int64_t{-1};
  auto n = parse_int(v, 0, std::numeric_limits<long>::max() / 2);
  if (!n) return Error{n.error()};
  return int64_t{n.value()};
}
}  // namespace

ApiReply Gateway::operation_events(const ApiRequest& req, const Params& params) {
  StreamRequest sr;
  sr.op_id = params.at("id");
  auto last_seen = last_event_id(req);
  if (!last_seen) return bad_query("Last-Event-ID must be an event id from this stream");
  sr.last_event_id = last_seen.value();
  sr.cloudevents = req.query.count("format") && req.query.at("format") == "cloudevents";
  {
    auto op = visible_operation(req, sr.op_id);
    if (!op) return operation_not_found(sr.op_id);
    auto reader = m_readers.acquire();
    // A client that already saw the end is told to stop reconnecting.
    if (sr.last_event_id >= 0 && is_terminal(op->state) &&
        reader->changes_after(sr.last_event_id, 1, sr.op_id).empty()) {
      ApiReply r;
      r.status = 204;
      r.content_type = "";
      return r;
    }
  }
  ApiReply r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"X-Accel-Buffering", "no"});
  r.stream = sr;
  return r;
}

ApiReply Gateway::all_events(const ApiRequest& req) {
  StreamRequest sr;
  if (!sees_all(req)) sr.owner = req.owner;
  auto last_seen = last_event_id(req);
  if (!last_seen) return bad_query("Last-Event-ID must be an event id from this stream");
  sr.last_event_id = last_seen.value();
  for (const auto& [k, v] : req.query) {
    if (auto refused = take_state_or_name(k, v, &sr.state, &sr.name)) return *refused;
    if (k == "format") {
      if (v != "cloudevents" && v != "operation") return bad_query("format must be operation or cloudevents");
      sr.cloudevents = v == "cloudevents";
    }
  }
  ApiReply r;
  r.content_type = "text/event-stream";
  r.headers.push_back({"X-Accel-Buffering", "no"});
  r.stream = sr;
  return r;
}

namespace {
ApiReply forbidden_write(const ApiRequest& req) {
  return problem_reply(403, "role " + req.role + " may only read; commands need submitter or admin",
                       "forbidden");
}

// The one answer for a resource that does not exist or is not the
// caller's, on reads and commands alike, so that neither tells them apart.
ApiReply resource_not_found(const std::string& path) {
  return problem_reply(404, "no resource at " + path, "not_found");
}

// The write rule (issue 15, asyncops-routes(5)). The paths a command acts
// on (its request path, and the resource it names unless it creates one)
// and each of their ancestors must be the caller's, or nobody's; nobody's
// is "does not exist" for a path whose ids the gateway generates. An admin
// or the local operator is not checked. A create claims its new resource,
// and so does a command on a client-named resource ({name} bound by the
// path, of a kind no route creates) that nobody owns yet. A resource
// without a placeholder (a singleton, "/settings") is never claimed: it
// would lock every other caller out of it.
OwnershipCheck ownership_check(const RouteTable& routes, const Route& route, const ApiRequest& req,
                               const std::string& resource) {
  OwnershipCheck check;
  bool creates = creates_resource(route);
  if (route.resource && !route.resource->placeholders().empty() &&
      (creates || !routes.is_generated_path(resource))) {
    check.claim = resource;
  }
  if (sees_all(req)) return check;
  auto add_with_ancestors = [&](std::string path) {
    while (path.size() > 1) {
      bool listed = std::any_of(check.paths.begin(), check.paths.end(),
                                [&](const OwnershipCheck::Path& p) { return p.path == path; });
      if (!listed) check.paths.push_back({path, routes.is_generated_path(path)});
      auto slash = path.rfind('/');
      if (slash == 0 || slash == std::string::npos) break;
      path.resize(slash);
    }
  };
  add_with_ancestors(req.path);
  if (route.resource && !creates) add_with_ancestors(resource);
  return check;
}
}  // namespace

ApiReply Gateway::accept_command(const Route& route, const ApiRequest& req, const Params& params,
                                 const std::string& retry_of) {
  if (!may_write(req)) return forbidden_write(req);
  auto started = std::chrono::steady_clock::now();
  ApiReply r = accept_command_timed(route, req, params, retry_of);
  if (!m_services.accepted || !r.later) return r;
  // The latency is measured to the commit's answer (before any Prefer: wait).
  auto accepted = m_services.accepted;
  std::string command = route.command;
  r.later = [later = std::move(r.later), accepted, command, started](std::function<void(Finish)> deliver) {
    later([deliver = std::move(deliver), accepted, command, started](Finish f) {
      deliver([f = std::move(f), accepted, command, started] {
        ApiReply done = f();
        if (done.status == 202 || done.status == 200) {
          accepted(command,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        }
        return done;
      });
    });
  };
  return r;
}

ApiReply Gateway::accept_command_timed(const Route& route, const ApiRequest& req, const Params& params,
                                       const std::string& retry_of) {
  if (req.body.size() > m_options.max_body_bytes) {
    return body_too_large(m_options.max_body_bytes);
  }
  json body = json::object();
  bool has_content = req.body.find_first_not_of(" \t\r\n") != std::string::npos;
  if (has_content || route.has_body) {
    std::string ct = req.header("content-type");
    if (has_content && !is_json_media_type(ct)) {
      return problem_reply(
          415,
          ct.empty() ? "a body needs Content-Type: application/json"
                     : "Content-Type " + ct.substr(0, 100) + " is not JSON; send application/json",
          "unsupported_media_type");
    }
    if (has_content) {
      // Depth, the number of values and the length of each string are
      // limited while parsing, so that no body can exhaust stack or memory.
      bool too_deep = false, too_many = false, too_long = false;
      size_t values = 0;
      const int max_depth = m_options.max_json_depth;
      const size_t max_fields = m_options.max_fields, max_string = m_options.max_string_bytes;
      // A body one pass over its bytes shows within all three limits, in the
      // plain subset (the usual one): the same tree, without nlohmann's
      // lexer. Anything else is parsed below, which says what is wrong.
      JsonLimits plain;
      plain.max_bytes = req.body.size();
      plain.max_depth = max_depth;
      plain.max_values = max_fields;
      plain.max_string_bytes = max_string;
      if (!parse_plain_object_within(req.body, plain, &body)) body = json::parse(
          req.body,
          [&](int depth, json::parse_event_t ev, json& parsed) {
            if (depth > max_depth) too_deep = true;
            if (ev == json::parse_event_t::value && ++values > max_fields) too_many = true;
            if ((ev == json::parse_event_t::key || ev == json::parse_event_t::value) && parsed.is_string() &&
                parsed.get_ref<const std::string&>().size() > max_string) {
              too_long = true;
            }
            return !(too_deep || too_many || too_long);
          },
          /*allow_exceptions=*/false);
      if (too_deep) {
        return problem_reply(
            400, "the body is nested more than " + std::to_string(max_depth) + " levels deep",
            "invalid_json");
      }
      if (too_many) {
        return problem_reply(413,
                             "the body has more than " + std::to_string(max_fields) + " values",
                             "too_many_fields");
      }
      if (too_long) {
        return problem_reply(
            422, "a string in the body is longer than " + std::to_string(max_string) + " bytes",
            "string_too_long");
      }
      if (body.is_discarded()) {
        return problem_reply(400, "the body is not valid JSON", "invalid_json");
      }
    }
    if (route.has_body) {
      auto errors = validate_body(route, body);
      if (!errors.empty()) {
        return problem_reply({422, "", "the body has " + std::to_string(errors.size()) +
                                           (errors.size() == 1 ? " invalid field" : " invalid fields"),
                              "validation_failed", "", errors});
      }
    }
  }

  // Backpressure: past the backlog limit, say "later" instead of growing.
  if (m_committer.counters().unfinished.load() >= m_options.max_backlog) {
    ApiReply r = problem_reply(503,
                               "the backlog is full (" + std::to_string(m_options.max_backlog) +
                                   " unfinished operations); try again later",
                               "backlog_full");
    r.headers.push_back({"Retry-After", "5"});
    return r;
  }
  IdempotencyKey key;
  key.key = req.header("idempotency-key");
  if (!key.key.empty()) {
    bool printable = key.key.size() <= 255;
    for (unsigned char c : key.key) printable = printable && c >= 0x21 && c <= 0x7e;
    if (!printable) {
      return problem_reply(400, "Idempotency-Key must be 1 to 255 visible ASCII characters",
                           "invalid_idempotency_key");
    }
    key.owner = req.owner;
    // The request's fingerprint: method, path and the body as parsed (so
    // key order and spacing do not matter).
    std::string text = req.method + "\n" + req.path + "\n" + json_text(body, json::error_handler_t::strict);
    uint64_t h = 1469598103934665603ULL;  // FNV-1a 64
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    key.request_hash = hex;
  }

  OperationRecord op;
  op.id = new_uuid_v7();
  if (req.connected_us) timeline_mark_at("connection_accepted", op.id, req.connected_us);
  if (req.timeline_us) timeline_mark_at("request_read", op.id, req.timeline_us);
  timeline_mark("accept", op.id);
  op.name = route.command;
  op.service = route.service;
  op.origin = req.method + " " + req.path;
  op.owner = req.owner;
  op.retry_of = retry_of;
  op.params = json::object();
  Params all = params;
  if (route.resource) {
    // Ids the path does not give are made here, before dispatch, so the
    // client learns the resource's address in the 202.
    for (const std::string& ph : route.resource->placeholders()) {
      if (!all.count(ph)) all[ph] = new_uuid_v7();
    }
    op.resource = route.resource->expand(all);
  }
  for (const auto& [k, v] : all) op.params[k] = v;
  op.payload = std::move(body);
  op.created_at = op.updated_at = now_ms();

  // The 202 is written from the commit's completion: no thread waits for it.
  Deferred deferred;
  ApiRequest answer_to;  // what the reply needs of the request
  answer_to.method = req.method;
  answer_to.path = req.path;
  answer_to.owner = req.owner;
  answer_to.headers["host"] = req.header("host");
  answer_to.headers["prefer"] = req.header("prefer");
  OwnershipCheck owners = ownership_check(m_routes, route, req, op.resource);
  bool queued = m_committer.accept_async(
      std::move(op), key, std::move(owners),
      // Called once, after the commit (on the commit thread, or on this
      // one when it led the commit, group_commit.h): what the reply needs
      // moves on.
      [this, settle = deferred.settle(), answer_to = std::move(answer_to),
       key](Result<GroupCommitter::Accepted> committed) mutable {
        settle([this, answer_to = std::move(answer_to), key = std::move(key), committed = std::move(committed)] {
          return finish_accept(answer_to, key, committed);
        });
      },
      route.steps);  // a saga's plan, frozen into it in the accept's transaction
  if (!queued) return store_unavailable("the daemon is shutting down; try again");
  return deferred.reply(202);
}

ApiReply Gateway::finish_accept(const ApiRequest& req, const IdempotencyKey& key,
                                const Result<GroupCommitter::Accepted>& committed) {
  if (!committed) {
    return store_unavailable("the operation could not be stored; try again");
  }
  if (committed->not_found) return resource_not_found(req.path);  // nothing was stored
  if (committed->replay) {
    if (committed->replay_hash != key.request_hash) {
      return problem_reply(422, "Idempotency-Key " + key.key + " was used with a different request",
                           "idempotency_key_reused");
    }
    // The same request again: answer as the first time, from its "accepted" snapshot.
    auto first = m_readers.acquire()->changes_after(0, 1, committed->replay_op_id);
    if (first.empty()) return internal_error();
    return accepted_reply(req, first[0].op, true);
  }
  return accepted_reply(req, committed->change.op, false, committed->change.seq);
}

ApiReply Gateway::accepted_reply(const ApiRequest& req, const OperationRecord& stored, bool replayed, int64_t seq) {
  std::string op_path = "/operations/" + stored.id;
  std::string host = req.header("host");
  std::string op_url = host.empty() ? op_path : "http://" + host + op_path;
  std::string resource = stored.resource;

  auto prefs = parse_prefer(req.header("prefer"));
  std::string applied;
  long wait = 0;
  if (prefs.count("wait") && !replayed) {
    auto n = parse_int(prefs["wait"], 0, 1000000);
    if (n && n.value() > 0) {
      wait = std::min<long>(n.value(), m_options.max_wait_seconds);
      applied = "wait=" + std::to_string(wait);
    }
  }
  if (applied.empty() && prefs.count("respond-async")) applied = "respond-async";
  // The answer: the stored snapshot, or after a wait the latest state (200
  // once terminal).
  auto answer = [=](const OperationRecord& op, bool waited) {
    ApiReply r = json_text_reply(waited && is_terminal(op.state) ? 200 : 202, operation_json_text(op));
    r.headers.push_back({"X-Operation", op_path});
    r.headers.push_back({"X-Resource", resource});
    r.headers.push_back({"Location", op_url});
    r.headers.push_back({"Operation-Location", op_url});
    if (r.status == 202) r.headers.push_back({"Retry-After", "1"});
    if (!applied.empty()) r.headers.push_back({"Preference-Applied", applied});
    if (replayed) r.headers.push_back({"Idempotent-Replayed", "true"});
    return r;
  };
  if (wait <= 0) return answer(stored, false);
  ApiReply r;
  r.status = 202;
  // The document a client gets is the operation's own (no request or
  // retries), so the change that ended it is the answer: no read.
  r.wait = wait_for(stored.id, std::chrono::steady_clock::now() + std::chrono::seconds(wait),
                    [answer, stored](std::optional<OperationRecord> now) {
                      return now ? answer(*now, true) : answer(stored, false);
                    },
                    true);
  if (!is_terminal(stored.state)) r.wait->since = seq;
  return r;
}

ApiReply Gateway::cancel_operation(const ApiRequest& req, const Params& params) {
  const std::string& id = params.at("id");
  auto op = visible_operation(req, id);
  if (op && !may_write(req)) return forbidden_write(req);
  if (!op) return operation_not_found(id);
  if (is_terminal(op->state)) {
    return problem_reply(409, "operation " + id + " already ended " + to_string(op->state),
                         "operation_finished");
  }
  // The dispatcher decides and the committer stores the decision; the
  // answer is read from the store once it is (daemon/cancel.h).
  Deferred deferred;
  CancelDone stored = [this, settle = deferred.settle(), id](Status r) {
    settle([this, id, r = std::move(r)] { return finish_cancel(id, r); });
  };
  if (op->step_count > 0) {
    // A saga decides about its own steps: the cancel is stored with the
    // saga's state, and its forward step in flight goes to the dispatcher.
    m_committer.cancel_saga(id, std::move(stored));
  } else if (m_services.cancel) {
    m_services.cancel(id, std::move(stored));
  } else {
    m_committer.apply_cancel({CancelDecision::Kind::notify_workers, id, ""}, std::move(stored));
  }
  return deferred.reply(202);
}

ApiReply Gateway::finish_cancel(const std::string& id, const Status& stored) {
  if (!stored) return store_unavailable("the store is unavailable");
  auto op = m_readers.acquire()->get_operation(id);
  if (!op) return operation_not_found(id);
  ApiReply r = json_text_reply(is_terminal(op->state) ? 200 : 202, operation_json_text(*op));
  if (r.status == 202) r.headers.push_back({"Retry-After", "1"});
  return r;
}

// The same command again, as a new operation linked to the first by
// retry_of: its request (method, path, body) goes through accept_command
// exactly as if the caller had sent it now, with the caller's identity,
// limits, ownership rules and Idempotency-Key.
ApiReply Gateway::retry_operation(const ApiRequest& req, const Params& params) {
  const std::string& id = params.at("id");
  auto op = visible_operation(req, id);  // another principal's answers as if unknown
  if (!op) return operation_not_found(id);
  if (!may_write(req)) return forbidden_write(req);
  if (!is_terminal(op->state)) {
    return problem_reply(409, "operation " + id + " has not ended; wait for it or cancel it first",
                         "operation_unfinished");
  }
  auto space = op->origin.find(' ');
  std::string method = space == std::string::npos ? op->origin : op->origin.substr(0, space);
  std::string path = space == std::string::npos ? "" : op->origin.substr(space + 1);
  for (const Route& route : m_routes.routes()) {
    Params bound;
    if (route.method != method || !route.path.match(path, &bound)) continue;
    ApiRequest again;
    again.method = method;
    again.path = path;
    again.body = json_text(op->payload, json::error_handler_t::strict);
    again.headers["content-type"] = "application/json";
    for (const char* h : {"host", "prefer", "idempotency-key"}) {
      if (!req.header(h).empty()) again.headers[h] = req.header(h);
    }
    again.owner = req.owner;
    again.role = req.role;
    again.remote_addr = req.remote_addr;
    return accept_command(route, again, bound, op->id);
  }
  return problem_reply(409, "no route serves " + op->origin + " any more; it cannot be retried",
                       "route_not_found");
}

namespace {
// The answer to DELETE /operations/{id} once the forget ran.
ApiReply forgot(const std::string& id, const Status& ran, StoreWriter::Applied result) {
  if (!ran) return store_unavailable("the store is unavailable");
  if (result == StoreWriter::Applied::unknown_operation) {
    return operation_not_found(id);
  }
  if (result == StoreWriter::Applied::ignored) {
    return problem_reply(409, "operation " + id + " has not ended; cancel it first",
                         "operation_unfinished");
  }
  ApiReply r;
  r.status = 204;
  r.content_type = "";
  return r;
}
}  // namespace

ApiReply Gateway::forget_operation(const ApiRequest& req, const Params& params) {
  const std::string& id = params.at("id");
  auto visible = visible_operation(req, id);
  if (!visible) return operation_not_found(id);
  if (!may_write(req)) return forbidden_write(req);
  // Answered from the commit's completion, like an accept.
  Deferred deferred;
  auto result = std::make_shared<StoreWriter::Applied>(StoreWriter::Applied::unknown_operation);
  m_committer.run_async([id, result](StoreWriter& w, std::vector<Change>&) { *result = w.forget(id); },
                        [settle = deferred.settle(), id, result](Status ran) {
                          settle([id, result, ran = std::move(ran)] { return forgot(id, ran, *result); });
                        });
  return deferred.reply(204);
}

ApiReply Gateway::get_operation(const ApiRequest& req, const Params& params) {
  const std::string& id = params.at("id");
  long wait = 0;
  std::string applied;
  if (auto it = req.query.find("wait"); it != req.query.end()) {
    auto asked = parse_int(it->second, 0, 1000000);
    if (!asked) return bad_query("wait must be a whole number of seconds");
    wait = asked.value();
  } else {
    auto prefs = parse_prefer(req.header("prefer"));
    if (auto p = prefs.find("wait"); p != prefs.end()) {
      if (auto preferred = parse_int(p->second, 0, 1000000)) {
        wait = preferred.value();
        applied = "wait=" + std::to_string(std::min<long>(wait, m_options.max_wait_seconds));
      }
    }
  }
  wait = std::min<long>(wait, m_options.max_wait_seconds);
  std::optional<OperationRecord> op = visible_operation(req, id);
  if (!op) return operation_not_found(id);
  auto answer = [this, id, applied](const std::optional<OperationRecord>& now) {
    if (!now) return operation_not_found(id);
    // The one document with the request, the worker and the retries.
    ApiReply r = json_reply(200, operation_detail_json(*now, m_readers.acquire()->retries_of(id)));
    if (!is_terminal(now->state)) r.headers.push_back({"Retry-After", "1"});
    if (!applied.empty()) r.headers.push_back({"Preference-Applied", applied});
    return r;
  };
  if (wait <= 0 || is_terminal(op->state)) return answer(op);
  ApiReply r;
  r.wait = wait_for(id, std::chrono::steady_clock::now() + std::chrono::seconds(wait), answer);
  return r;
}

ApiReply Gateway::list_operations(const ApiRequest& req) {
  OperationFilter f;
  f.limit = m_options.default_page;
  if (!sees_all(req)) f.owner = req.owner;  // bound in SQL, never concatenated
  for (const auto& [k, v] : req.query) {
    if (auto refused = take_state_or_name(k, v, &f.state, &f.name)) return *refused;
    if (k == "since") {
      auto t = parse_rfc3339(v);
      if (!t) return bad_query("since must be an RFC 3339 timestamp");
      f.since_ms = t.value();
    } else if (k == "until") {
      auto t = parse_rfc3339(v);
      if (!t) return bad_query("until must be an RFC 3339 timestamp");
      f.until_ms = t.value();
      if (f.until_ms <= 0) f.until_ms = 1;  // at or before the epoch: nothing, not "no filter"
    } else if (k == "code") {
      f.code = v;
    } else if (k == "resource") {
      if (v.empty() || v[0] != '/') return bad_query("resource must be a path such as /users/ID, or /users/ for all");
      f.resource = v;
    } else if (k == "owner") {
      // Another principal's operations are an admin's to list; naming
      // oneself is allowed (and changes nothing).
      if (!sees_all(req) && v != req.owner) {
        return problem_reply(403, "only an admin may list another principal's operations", "forbidden");
      }
      f.owner = v;
    } else if (k == "limit") {
      auto n = parse_int(v, 1, m_options.max_page);
      if (!n) return bad_query("limit must be between 1 and " + std::to_string(m_options.max_page));
      f.limit = static_cast<int>(n.value());
    } else if (k == "cursor") {
      auto raw = base64url_decode(v);
      if (!raw || raw->rfind("o:", 0) != 0) return bad_query("cursor is not one this server issued");
      auto seq = parse_int(raw->substr(2), 1, std::numeric_limits<long>::max() / 2);
      if (!seq) return bad_query("cursor is not one this server issued");
      f.before_seq = seq.value();
    }
  }
  int page = f.limit;
  f.limit = page + 1;  // one more tells whether there is a next page
  auto ops = m_readers.acquire()->list_operations(f);
  json items = json::array();
  for (int i = 0; i < static_cast<int>(ops.size()) && i < page; ++i) items.push_back(operation_json(ops[i]));
  json next = nullptr;
  if (static_cast<int>(ops.size()) > page)
    next = base64url_encode("o:" + std::to_string(ops[page - 1].seq));
  return json_reply(200, {{"items", std::move(items)}, {"next", next}});
}

ApiReply Gateway::operation_history(const ApiRequest& req, const Params& params) {
  const std::string& id = params.at("id");
  if (!visible_operation(req, id)) {
    return operation_not_found(id);
  }
  auto reader = m_readers.acquire();
  json items = json::array();
  for (const HistoryEntry& h : reader->history(id)) items.push_back(history_json(h));
  return json_reply(200, {{"items", std::move(items)}});
}

ApiReply Gateway::operation_stats(const ApiRequest& req) {
  long window = 10;
  if (auto it = req.query.find("window"); it != req.query.end()) {
    auto asked = parse_int(it->second, 1, 3600);
    if (!asked) return bad_query("window must be a whole number of seconds from 1 to 3600");
    window = asked.value();
  }
  // A principal that does not see everything sees the figures of its own operations.
  std::optional<std::string> owner;
  if (!sees_all(req)) owner = req.owner;
  bool cacheable = !owner && window == 10;
  auto now = std::chrono::steady_clock::now();
  if (cacheable) {
    MutexLock lock(&m_stats_mutex);
    if (!m_stats_cache.empty() && now - m_stats_cached_at < std::chrono::seconds(1)) {
      return json_text_reply(200, m_stats_cache);
    }
  }
  std::string body = stats_json(m_readers.acquire()->stats(now_ms(), owner, static_cast<int>(window))).dump();
  if (cacheable) {
    MutexLock lock(&m_stats_mutex);
    m_stats_cache = body;
    m_stats_cached_at = now;
  }
  return json_text_reply(200, std::move(body));
}

ApiReply Gateway::get_resource(const std::string& collection, const ApiRequest& req, const Params& params) {
  std::string path = collection + "/" + params.at("id");
  auto res = m_readers.acquire()->get_resource(path);
  // An owner-only resource of another principal answers as if absent.
  if (res && !sees_all(req) && m_routes.read_policy(collection) != "public" && res->owner != req.owner) {
    res.reset();
  }
  if (!res) return resource_not_found(path);
  return json_reply(200, res->body);
}

ApiReply Gateway::list_resources(const std::string& collection, const ApiRequest& req) {
  long limit = m_options.default_page;
  std::string after;
  for (const auto& [k, v] : req.query) {
    if (k == "limit") {
      auto n = parse_int(v, 1, m_options.max_page);
      if (!n) return bad_query("limit must be between 1 and " + std::to_string(m_options.max_page));
      limit = n.value();
    } else if (k == "cursor") {
      auto raw = base64url_decode(v);
      if (!raw || raw->rfind("r:" + collection + "/", 0) != 0) {
        return bad_query("cursor is not one this server issued");
      }
      after = raw->substr(2);
    }
  }
  std::optional<std::string> owner;
  if (!sees_all(req) && m_routes.read_policy(collection) != "public") owner = req.owner;
  auto rows = m_readers.acquire()->list_resources(collection, after, static_cast<int>(limit) + 1, owner);
  json items = json::array();
  for (long i = 0; i < static_cast<long>(rows.size()) && i < limit; ++i) items.push_back(rows[i].body);
  json next = nullptr;
  if (static_cast<long>(rows.size()) > limit) next = base64url_encode("r:" + rows[limit - 1].path);
  return json_reply(200, {{"items", std::move(items)}, {"next", next}});
}

}  // namespace asyncops
