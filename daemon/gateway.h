#pragma once
// Gateway: the whole HTTP API as plain functions of a request, with no
// sockets, so that it can be unit-tested and fuzzed. It matches the route,
// validates shape, stores the operation (group commit) and answers; reads
// come from the read model. http_api.cpp only adapts cpp-httplib to it.
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/auth.h"
#include "daemon/change_hub.h"
#include "daemon/group_commit.h"
#include "daemon/push_channel.h"
#include "daemon/router.h"
#include "daemon/routes.h"
#include "store/store.h"
#include "daemon/streams.h"
#include "daemon/tickets.h"
#include "shared/mutex.h"
#include "shared/problem.h"

namespace asyncops {

struct ApiRequest {
  std::string method;
  std::string path;  // without the query
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string owner;  // the authenticated principal; "" when anonymous
  // The caller's role, set by Gateway::handle from the token: "submitter",
  // "reader" or "admin"; "" when no tokens are configured (the local
  // operator, who sees everything).
  std::string role;
  std::string remote_addr;  // the peer's address; "" in unit tests (treated as loopback)
  size_t target_bytes = 0;  // length of the request target (path + query) as received
  long long timeline_us = 0;  // with ASYNCOPS_TIMELINE=1: when the server had the whole request
  long long connected_us = 0;  // and when it accepted the connection the request came on

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct ApiReply;
// Builds a reply. A deferred answer hands one to the server, which runs it
// on its own (I/O) thread, so that the commit thread never reads the store
// or formats a reply for a client.
using Finish = std::function<ApiReply()>;

// An answer that waits for an operation to end (?wait=N, Prefer: wait=N).
// The server subscribes to op_id in the ChangeHub and asks ready() once,
// after subscribing; then only a change that ends the operation wakes it
// (an operation leaves the store only after it ended). It answers once
// ready() is true, the operation ended, or the deadline passed, whichever
// comes first. No thread is held meanwhile.
struct ApiWait {
  std::string op_id;
  std::chrono::steady_clock::time_point deadline;
  std::function<bool()> ready;  // reads the store: true once the operation ended (or is gone)
  Finish finish;  // reads the latest state
  // Set: the answer when a change ended the operation, from that change's
  // document (ChangeHub::subscribe_changes), without reading the store.
  // Unset: finish() then.
  std::function<ApiReply(const OperationRecord&)> finish_ended;
  // > 0: the history seq the waiter knows the operation at, in a state that
  // is not terminal (an accept's commit). A server that subscribes with it
  // (ChangeHub::subscribe_changes) may skip ready() when the hub saw no
  // change to the operation since.
  int64_t since = 0;
};

// A client allowed to open a WebSocket at /ws (daemon/ws_channel.h): it
// sees the operations of owner, or every operation when owner is unset.
struct WebSocketGrant {
  std::optional<std::string> owner;
  // Set: the connection speaks this channel's protocol (the SignalR hub)
  // instead of /ws's.
  PushChannelFactory channel;
};

struct ApiReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // At most one of the following is set; each makes the reply "pending".
  //
  // A Server-Sent Events answer: the server writes status and headers, then
  // the events of a ChangeFeed for this request (daemon/streams.h).
  std::optional<StreamRequest> stream;
  // GET /ws was admitted: the server completes the WebSocket handshake.
  std::optional<WebSocketGrant> websocket;
  // The answer comes after a commit (an accept's 202). The server calls
  // later(deliver) once; deliver(finish) is then called exactly once, from
  // any thread (the commit thread, or inside later()); it must only hand
  // finish over to the connection, which runs it.
  std::function<void(std::function<void(Finish)>)> later;
  // The answer waits for an operation to end.
  std::shared_ptr<ApiWait> wait;
  // A Server-Sent Events answer whose events are a PushChannel's messages,
  // one `data:` line each (the SignalR hub's SSE transport).
  PushChannelFactory push_sse;

  bool pending() const { return stream || websocket || later || wait || push_sse; }

  std::string header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

// What the gateway asks of the rest of the daemon; each may be empty.
struct GatewayServices {
  // Cancels an operation (daemon/cancel.h): the dispatcher decides and
  // the committer stores the decision; done is called once it is stored
  // (or could not be), from any thread. Returns at once. Empty (no
  // dispatcher): the gateway stores the cancel request alone.
  std::function<void(const std::string& op_id, CancelDone done)> cancel;
  std::function<nlohmann::json()> workers;  // live workers
  std::function<std::string()> metrics;     // Prometheus text
  // GET /readyz: "" when ready, else the cause, the 503 problem's detail.
  std::function<std::string()> not_ready;
  // A command was accepted (202) after latency_ms.
  std::function<void(const std::string& command, double latency_ms)> accepted;
  // Maps an Authorization header to a principal and role (daemon/auth.h).
  // Empty: no tokens (open, loopback only).
  std::function<AuthDecision(const std::string& authorization)> authenticate;
  // Per-principal rate limit: 0 to admit, else the seconds to wait.
  std::function<int(const std::string& principal)> rate_limit;
};

struct GatewayOptions {
  size_t max_body_bytes = 1 << 20;
  int max_wait_seconds = 60;  // the cap on ?wait=N and Prefer: wait=N
  int default_page = 50;
  int max_page = 1000;
  StreamOptions stream;
  // Origins allowed to call from a browser (CORS); empty: same origin only;
  // "*": any origin.
  std::vector<std::string> cors_origins;
  // Commands are refused with 503 while this many operations are unfinished.
  int64_t max_backlog = 50000;
  // Request limits (issue 7). Each is answered with problem+json.
  size_t max_header_bytes = 8192;  // all header names and values together: 431
  size_t max_url_bytes = 2048;     // the request target: 414
  size_t max_fields = 256;         // members + elements in a body: 413
  size_t max_string_bytes = 65536; // any one string (or key) in a body: 422
  int max_json_depth = 64;         // 400
  // The SignalR hub (/hubs/operations) pings a quiet connection this often.
  std::chrono::milliseconds hub_ping_interval{15000};
};

// A problem+json reply (RFC 9457).
ApiReply problem_reply(const Problem& p);
// The usual one: status, a detail for people and a code for programs; the
// title is the status phrase.
ApiReply problem_reply(int status, std::string detail, std::string code);
// The replies more than one place sends, worded once.
ApiReply operation_not_found(const std::string& id);  // 404 operation_not_found
ApiReply internal_error();                            // 500 internal_error
ApiReply uri_too_long(size_t max_url_bytes);          // 414
ApiReply headers_too_large(size_t max_header_bytes);  // 431
ApiReply body_too_large(size_t max_body_bytes);       // 413

class SignalrHub;

class Gateway {
 public:
  Gateway(RouteTable routes, GroupCommitter& committer, ReaderPool& readers, ChangeHub& hub,
          GatewayOptions options = {}, GatewayServices services = {});
  ~Gateway();

  // Answers any request without blocking. Never throws: an unexpected
  // failure is a 500 problem. Authenticates (GatewayServices::authenticate)
  // and checks limits first. The reply may be pending (ApiReply::later,
  // wait, stream or websocket); the server completes it without holding a
  // thread, and every reply a pending one turns into carries the CORS
  // headers too.
  ApiReply begin(ApiRequest req);

  // begin(), then completes a pending `later` or `wait` by blocking this
  // thread (streams and WebSockets are returned as they are). For tests and
  // tools: the server never calls it.
  ApiReply handle(ApiRequest req);
  ApiReply resolve_blocking(ApiReply reply);

  const StreamOptions& stream_options() const { return m_options.stream; }
  ChangeHub& hub() { return m_hub; }
  ReaderPool& readers() { return m_readers; }

  const RouteTable& routes() const { return m_routes; }


 private:
  using Params = std::map<std::string, std::string>;
  using Handler = std::function<ApiReply(const ApiRequest&, const Params&)>;

  // retry_of: the operation this command retries (POST /operations/{id}/retry).
  ApiReply accept_command(const Route& route, const ApiRequest& req, const Params& params,
                          const std::string& retry_of = "");
  ApiReply accept_command_timed(const Route& route, const ApiRequest& req, const Params& params,
                                const std::string& retry_of);
  ApiReply get_operation(const ApiRequest& req, const Params& params);
  ApiReply list_operations(const ApiRequest& req);
  ApiReply operation_history(const ApiRequest& req, const Params& params);
  ApiReply operation_stats(const ApiRequest& req);
  ApiReply cancel_operation(const ApiRequest& req, const Params& params);
  ApiReply forget_operation(const ApiRequest& req, const Params& params);
  ApiReply retry_operation(const ApiRequest& req, const Params& params);
  // seq: the history seq op is as of, when it is that committed change's
  // own document (0: unknown).
  ApiReply accepted_reply(const ApiRequest& req, const OperationRecord& op, bool replayed, int64_t seq = 0);
  // The reply to a cancel once its decision is stored; runs on an I/O thread.
  ApiReply finish_cancel(const std::string& id, const Status& stored);
  // The reply to a committed accept (or its failure); runs on an I/O thread.
  ApiReply finish_accept(const ApiRequest& req, const IdempotencyKey& key,
                         const Result<GroupCommitter::Accepted>& committed);
  ApiReply websocket(const ApiRequest& req);
  ApiReply issue_ticket(const ApiRequest& req);
  // The SignalR hub (daemon/signalr_hub.h): negotiate, a transport's GET,
  // the SSE transport's messages (POST) and DELETE.
  ApiReply hub_negotiate(const ApiRequest& req);
  ApiReply hub_request(const ApiRequest& req);
  // Adds the CORS headers to reply and to whatever a pending reply becomes.
  void decorate(const ApiRequest& req, ApiReply* reply) const;
  // A wait for operation id until deadline, answered by finish(latest
  // state); with ended_only, by finish(the document of the change that
  // ended it) when one did, without a read (ApiWait::finish_ended).
  std::shared_ptr<ApiWait> wait_for(const std::string& id, std::chrono::steady_clock::time_point deadline,
                                    std::function<ApiReply(std::optional<OperationRecord>)> finish,
                                    bool ended_only = false);
  ApiReply operation_events(const ApiRequest& req, const Params& params);
  ApiReply all_events(const ApiRequest& req);
  ApiReply preflight(const ApiRequest& req);
  void add_cors(const ApiRequest& req, ApiReply* reply) const;
  ApiReply get_resource(const std::string& collection, const ApiRequest& req, const Params& params);
  ApiReply list_resources(const std::string& collection, const ApiRequest& req);
  // Authentication, loopback rule, limits and rate: a reply to send instead
  // of handling the request, or nullopt to go on (owner and role set).
  std::optional<ApiReply> admit(ApiRequest& req);
  // The operation if it exists and the caller may see it; nullopt answers
  // 404 exactly as for an unknown id.
  std::optional<OperationRecord> visible_operation(const ApiRequest& req, const std::string& id);

  RouteTable m_routes;
  GroupCommitter& m_committer;
  ReaderPool& m_readers;
  ChangeHub& m_hub;
  GatewayOptions m_options;
  Router<Handler> m_router;
  GatewayServices m_services;
  // GET /stats scans every operation: the whole-store document is reused
  // for a second, so that consoles polling it cost one scan a second.
  Mutex m_stats_mutex;
  std::string m_stats_cache GUARDED_BY(m_stats_mutex);
  std::chrono::steady_clock::time_point m_stats_cached_at GUARDED_BY(m_stats_mutex);
  TicketBook m_tickets;
  std::unique_ptr<SignalrHub> m_signalr;
};

// The methods the API serves; any other gets 405 with Allow.
bool is_served_method(const std::string& method);

// Whether the caller may see everything: an admin, or the local operator
// when no tokens are configured.
bool sees_all(const ApiRequest& req);
// Whether a request is a GET of a stream (/events, /operations/{id}/events,
// /ws, /hubs/operations): the only requests that may authenticate with
// ?access_token= or ?ticket= instead of an Authorization header.
bool is_stream_request(const ApiRequest& req);
// Whether the caller may submit, cancel or forget (not a reader).
bool may_write(const ApiRequest& req);
// 127.0.0.0/8, ::1 or ::ffff:127.x; "" counts as loopback (in-process calls).
bool is_loopback_address(const std::string& addr);

// Parses an RFC 7240 Prefer header into preference -> value ("" if none).
std::map<std::string, std::string> parse_prefer(const std::string& header);

}  // namespace asyncops
