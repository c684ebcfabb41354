// Issue 7: tokens, authorization, limits and SQL that never includes input.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <SQLiteCpp/SQLiteCpp.h>

#include "daemon/auth.h"
#include "daemon/gateway.h"
#include "daemon/limits.h"
#include "api_request.h"
#include "value_of.h"
#include "store_fixture.h"

using namespace asyncops;
using namespace asyncops::test;
using nlohmann::json;

TEST_CASE("sha256_hex matches the FIPS 180-2 test vector") {
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("new tokens are aot_ plus 43 base64url characters, and differ") {
  std::string a = new_token(), b = new_token();
  CHECK(a.rfind("aot_", 0) == 0);
  CHECK(a.size() == 4 + 43);
  CHECK(a != b);
  CHECK(a.find_first_not_of("aot_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") ==
        std::string::npos);
}

TEST_CASE("the tokens file round-trips, is written 0600 and rejects bad lines") {
  TempDir dir;
  std::string path = dir.path + "/tokens";
  std::vector<TokenEntry> e = {{sha256_hex("t1"), "ann", Role::submitter}, {sha256_hex("t2"), "ops", Role::admin}};
  REQUIRE(write_tokens_file(path, e));
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto back = read_tokens_file(path);
  REQUIRE(back);
  REQUIRE(back.value().size() == 2);
  CHECK(back.value()[1].principal == "ops");
  CHECK(back.value()[1].role == Role::admin);
  CHECK(!parse_tokens("sha256:abc ann submitter\n"));
  CHECK(!parse_tokens("sha256:" + sha256_hex("x") + " ann superuser\n"));
  CHECK(!parse_tokens("sha256:" + sha256_hex("x") + " 'ann; DROP' reader\n"));
  CHECK(read_tokens_file(dir.path + "/missing").value().empty());
}

TEST_CASE("TokenStore authenticates bearer tokens and sees a revoke after a reload") {
  TempDir dir;
  std::string path = dir.path + "/tokens";
  TokenStore open_store(path);
  CHECK(open_store.check("").kind == AuthDecision::open);
  REQUIRE(write_tokens_file(path, {{sha256_hex("secret-a"), "ann", Role::reader}}));
  TokenStore store(path);
  CHECK(store.configured());
  auto d = store.check("Bearer secret-a");
  CHECK(d.kind == AuthDecision::ok);
  CHECK(d.principal == "ann");
  CHECK(d.role == Role::reader);
  CHECK(store.check("").kind == AuthDecision::missing);
  CHECK(store.check("Bearer nope").kind == AuthDecision::invalid);
  CHECK(store.check("Basic c2VjcmV0LWE=").kind == AuthDecision::invalid);
  REQUIRE(write_tokens_file(path, {{sha256_hex("secret-b"), "bob", Role::admin}}));
  store.reload(true);
  CHECK(store.check("Bearer secret-a").kind == AuthDecision::invalid);
  CHECK(store.check("Bearer secret-b").principal == "bob");
  // Without a forced reload, the change shows within about a second.
  REQUIRE(write_tokens_file(path, {{sha256_hex("secret-c"), "cy", Role::admin}}));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(store.check("Bearer secret-c").principal == "cy");
}

TEST_CASE("TokenStore: a token added to the file works at once, not a second later (issue 16)") {
  TempDir dir;
  std::string path = dir.path + "/tokens";
  REQUIRE(write_tokens_file(path, {{sha256_hex("old"), "ann", Role::reader}}));
  TokenStore store(path);
  CHECK(store.check("Bearer old").kind == AuthDecision::ok);
  // No sleep: the once-a-second check has not run yet, the miss re-checks.
  REQUIRE(write_tokens_file(path, {{sha256_hex("old"), "ann", Role::reader}, {sha256_hex("new"), "bob", Role::admin}}));
  auto d = store.check("Bearer new");
  CHECK(d.kind == AuthDecision::ok);
  CHECK(d.principal == "bob");
  // Same size, same second: the rename gives a new inode, which is noticed.
  // Misses right after a miss re-check too (CI added five tokens back to back).
  REQUIRE(write_tokens_file(path, {{sha256_hex("old"), "ann", Role::reader}, {sha256_hex("neW"), "bob", Role::admin}}));
  CHECK(store.check("Bearer neW").kind == AuthDecision::ok);
  CHECK(store.check("Bearer nope").kind == AuthDecision::invalid);
  for (int i = 0; i < 5; ++i) {
    std::string token = "t" + std::to_string(i);
    CHECK(store.check("Bearer " + token).kind == AuthDecision::invalid);
    std::vector<TokenEntry> entries{{sha256_hex("old"), "ann", Role::reader}};
    for (int j = 0; j <= i; ++j) entries.push_back({sha256_hex("t" + std::to_string(j)), "p" + std::to_string(j), Role::submitter});
    REQUIRE(write_tokens_file(path, entries));
    INFO(token);
    CHECK(store.check("Bearer " + token).kind == AuthDecision::ok);
  }
}

TEST_CASE("RateLimiter: a bucket per principal, Retry-After when empty") {
  RateLimiter off(0);
  CHECK(off.take("a") == 0);
  RateLimiter lim(2, 2);  // 2/s, burst 2
  int64_t t = 1000000000;
  CHECK(lim.take_at("a", t) == 0);
  CHECK(lim.take_at("a", t) == 0);
  CHECK(lim.take_at("a", t) >= 1);
  CHECK(lim.take_at("b", t) == 0);  // another principal has its own bucket
  CHECK(lim.take_at("a", t + 600000000) == 0);  // refilled after 0.6 s
  CHECK(value_of(parse_rate("100/s")) == 100);
  CHECK(value_of(parse_rate("60/m")) == 1);
  auto bad = parse_rate("x/s");
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == "'x/s' is not a rate like 100/s or 60/m");
}

TEST_CASE("list_operations treats SQL-looking filter values as data") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  w->begin();
  auto a = new_op("create_user");
  a.owner = "ann";
  w->insert_operation(&a);
  auto b = new_op("x' OR '1'='1");
  b.owner = "' OR 1=1 --";
  w->insert_operation(&b);
  w->commit();
  auto r = std::move(SqliteStoreReader::open(path).value());
  OperationFilter f;
  f.name = "create_user' OR '1'='1";
  CHECK(r->list_operations(f).empty());
  f.name = "x' OR '1'='1";
  auto got = r->list_operations(f);
  REQUIRE(got.size() == 1);
  CHECK(got[0].id == b.id);
  OperationFilter o;
  o.owner = "nobody' OR owner <> '";
  CHECK(r->list_operations(o).empty());
  o.owner = "' OR 1=1 --";
  REQUIRE(r->list_operations(o).size() == 1);
  o.owner = "ann";
  REQUIRE(r->list_operations(o).size() == 1);
  CHECK(r->list_operations(o)[0].id == a.id);
  CHECK(r->list_resources("/users' OR '1'='1", "", 10, std::string("x' OR '1'='1")).empty());
  CHECK(!r->get_resource("/users/' OR 1=1 --"));
  CHECK(!r->get_operation("' OR 1=1 --"));
}

TEST_CASE("no daemon source builds SQL from anything but literals and k_ constants") {
  // Simple by design: a line with an SQL keyword inside a string literal may
  // only concatenate string literals, std::string("...") and k_* constants,
  // and `sql +=` may only append a literal.
  std::regex sql_literal(R"re("[^"]*\b(SELECT|INSERT|UPDATE|DELETE|WHERE|AND|OR|VALUES|LIMIT|ORDER BY)\b[^"]*")re");
  std::regex bad_operand(R"re(\+\s*([A-Za-z_][A-Za-z_0-9:.>\-]*)\s*(\(|\+|;|,|\)|$))re");
  std::regex sql_append(R"re(\bsql\s*\+=\s*[^"\s])re");
  std::vector<std::string> offenders;
  for (const char* file : {"store/store.cpp", "store/sqlite_store.cpp", "store/store_stats.cpp", "store/operation.cpp",
                           "store/maintenance.cpp",
                           "store/pid_lock.cpp", "daemon/gateway.cpp", "daemon/streams.cpp", "daemon/group_commit.cpp",
                           "daemon/retention.cpp", "daemon/routes.cpp", "daemon/daemon.cpp", "daemon/auth.cpp",
                           "daemon/http_server.cpp", "daemon/ws_channel.cpp", "daemon/dispatcher.cpp",
                           "daemon/tracker.cpp"}) {
    std::ifstream in(std::string(ASYNCOPS_SOURCE_DIR) + "/" + file);
    REQUIRE(in);
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      ++n;
      if (std::regex_search(line, sql_append)) offenders.push_back(std::string(file) + ":" + std::to_string(n));
      if (!std::regex_search(line, sql_literal)) continue;
      for (auto it = std::sregex_iterator(line.begin(), line.end(), bad_operand); it != std::sregex_iterator(); ++it) {
        std::string id = (*it)[1];
        if (id.rfind("k_", 0) == 0 || id == "std::string") continue;
        offenders.push_back(std::string(file) + ":" + std::to_string(n) + ": " + line);
      }
    }
  }
  INFO("SQL built from a value: " << (offenders.empty() ? "" : offenders[0]));
  CHECK(offenders.empty());
}

namespace {

struct SecuredApi : StoreWithHub {
  RateLimiter limiter{0};
  std::unique_ptr<Gateway> gw;
  bool open = false;

  explicit SecuredApi(GatewayOptions opts = {}, double rate = 0, const char* routes = RouteTable::default_json())
      : limiter(rate, rate) {
    GatewayServices s;
    s.authenticate = [this](const std::string& h) {
      AuthDecision d;
      if (open) return d;
      static const std::map<std::string, std::pair<std::string, Role>> k = {
          {"Bearer ann", {"ann", Role::submitter}},
          {"Bearer bob", {"bob", Role::submitter}},
          {"Bearer ann-reader", {"ann", Role::reader}},
          {"Bearer root", {"root", Role::admin}}};
      if (h.empty()) {
        d.kind = AuthDecision::missing;
      } else if (auto it = k.find(h); it != k.end()) {
        d.kind = AuthDecision::ok;
        d.principal = it->second.first;
        d.role = it->second.second;
      } else {
        d.kind = AuthDecision::invalid;
      }
      return d;
    };
    if (rate > 0) s.rate_limit = [this](const std::string& p) { return limiter.take(p); };
    gw = std::make_unique<Gateway>(RouteTable::load_json(routes).value(), gc, readers, hub, opts, s);
    gc.start();
  }
  ~SecuredApi() {
    hub.shutdown();
    gc.stop();
  }
  ApiReply call(const std::string& token, const std::string& method, const std::string& path,
                const std::string& body = "", std::map<std::string, std::string> query = {}) {
    ApiRequest r = json_request(method, path, body, std::move(query));
    if (!token.empty()) r.headers["authorization"] = "Bearer " + token;
    return gw->handle(r);
  }
};

}  // namespace

TEST_CASE("a principal sees only its own operations, and another principal gets 404 as for an unknown id") {
  SecuredApi api;
  auto created = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  REQUIRE(created.status == 202);
  std::string id = json::parse(created.body)["id"];
  std::string unknown = "01900000-0000-7000-8000-000000000000";
  auto mine = api.call("ann", "GET", "/operations/" + id);
  CHECK(mine.status == 200);
  CHECK(api.call("ann-reader", "GET", "/operations/" + id).status == 200);
  auto other = api.call("bob", "GET", "/operations/" + id);
  auto none = api.call("bob", "GET", "/operations/" + unknown);
  CHECK(other.status == 404);
  CHECK(json::parse(other.body)["code"] == json::parse(none.body)["code"]);
  CHECK(api.call("bob", "GET", "/operations/" + id, "", {{"wait", "1"}}).status == 404);
  CHECK(api.call("bob", "GET", "/operations/" + id + "/history").status == 404);
  CHECK(api.call("bob", "GET", "/operations/" + id + "/events").status == 404);
  CHECK(api.call("bob", "POST", "/operations/" + id + "/cancel").status == 404);
  CHECK(api.call("bob", "DELETE", "/operations/" + id).status == 404);
  CHECK(json::parse(api.call("bob", "GET", "/operations").body)["items"].empty());
  CHECK(json::parse(api.call("ann", "GET", "/operations").body)["items"].size() == 1);
  CHECK(json::parse(api.call("root", "GET", "/operations").body)["items"].size() == 1);
  CHECK(api.call("root", "GET", "/operations/" + id).status == 200);
}

TEST_CASE("roles: readers cannot submit or cancel, and no or a bad token is 401 with WWW-Authenticate") {
  SecuredApi api;
  auto r = api.call("ann-reader", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  CHECK(r.status == 403);
  CHECK(r.content_type == "application/problem+json");
  auto created = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  std::string id = json::parse(created.body)["id"];
  CHECK(api.call("ann-reader", "POST", "/operations/" + id + "/cancel").status == 403);
  auto anon = api.call("", "GET", "/operations");
  CHECK(anon.status == 401);
  CHECK(anon.header("WWW-Authenticate").rfind("Bearer", 0) == 0);
  CHECK(anon.content_type == "application/problem+json");
  auto bad = api.call("forged", "GET", "/operations");
  CHECK(bad.status == 401);
  CHECK(bad.header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  CHECK(api.call("", "GET", "/healthz").status == 200);
}

TEST_CASE("without tokens only loopback callers are served") {
  SecuredApi api;
  api.open = true;
  ApiRequest r;
  r.method = "GET";
  r.path = "/operations";
  r.remote_addr = "10.1.2.3";
  CHECK(api.gw->handle(r).status == 403);
  r.remote_addr = "127.0.0.1";
  CHECK(api.gw->handle(r).status == 200);
  r.remote_addr = "::1";
  CHECK(api.gw->handle(r).status == 200);
  CHECK(is_loopback_address("::ffff:127.0.0.1"));
  CHECK(!is_loopback_address("128.0.0.1"));
}

TEST_CASE("limits answer 414, 431, 400, 413, 422 and 429 as problem+json") {
  GatewayOptions o;
  o.max_url_bytes = 100;
  o.max_header_bytes = 300;
  o.max_fields = 10;
  o.max_string_bytes = 50;
  o.max_json_depth = 8;
  SecuredApi api(o, 1000);
  auto is_problem = [](const ApiReply& r) { return r.content_type == "application/problem+json"; };
  auto uri = api.call("ann", "GET", "/operations/" + std::string(200, 'a'));
  CHECK(uri.status == 414);
  CHECK(is_problem(uri));
  ApiRequest big;
  big.method = "GET";
  big.path = "/operations";
  big.headers["authorization"] = "Bearer ann";
  big.headers["x-junk"] = std::string(400, 'x');
  auto hdr = api.gw->handle(big);
  CHECK(hdr.status == 431);
  CHECK(is_problem(hdr));
  auto deep = api.call("ann", "POST", "/users", std::string(20, '[') + std::string(20, ']'));
  CHECK(deep.status == 400);
  json many = json::object();
  for (int i = 0; i < 20; ++i) many["f" + std::to_string(i)] = i;
  auto fields = api.call("ann", "POST", "/users", many.dump());
  CHECK(fields.status == 413);
  CHECK(is_problem(fields));
  auto str = api.call("ann", "POST", "/users", json{{"email", std::string(60, 'e')}, {"name", "A"}}.dump());
  CHECK(str.status == 422);
  CHECK(json::parse(str.body)["code"] == "string_too_long");
}

TEST_CASE("the per-principal rate limit answers 429 with Retry-After") {
  SecuredApi api(GatewayOptions{}, 2);
  int limited = 0;
  std::string retry;
  for (int i = 0; i < 5; ++i) {
    auto r = api.call("ann", "GET", "/operations");
    if (r.status == 429) {
      ++limited;
      retry = r.header("Retry-After");
      CHECK(r.content_type == "application/problem+json");
    }
  }
  CHECK(limited >= 2);
  CHECK(!retry.empty());
  CHECK(api.call("bob", "GET", "/operations").status == 200);  // bob's bucket is his own
}

TEST_CASE("route read policy: owner-only resources are hidden from other principals") {
  auto t = RouteTable::load_json(R"({"routes":[{"method":"POST","path":"/notes","command":"c","service":"s",
    "resource":"/notes/{id}","read":"public"}]})");
  REQUIRE(t);
  CHECK(t.value().read_policy("/notes") == "public");
  CHECK(RouteTable::load_json(RouteTable::default_json()).value().read_policy("/users") == "owner");
  CHECK(!RouteTable::load_json(R"({"routes":[{"method":"POST","path":"/n","command":"c","service":"s",
    "read":"everyone"}]})"));
}

TEST_CASE("an event cannot write a resource its operation does not own") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  w->begin();
  auto op = new_op();
  w->insert_operation(&op);
  Change c;
  Event e = event_for(op, OpState::completed, "success");
  e.resource = "/users/someone-else";
  e.data = json{{"email", "forged@example.com"}};
  CHECK(w->apply_event(e, now_ms(), &c) == StoreWriter::Applied::rejected);
  e.resource = op.resource;
  CHECK(w->apply_event(e, now_ms(), &c) == StoreWriter::Applied::changed);
  w->commit();
  auto r = std::move(SqliteStoreReader::open(path).value());
  CHECK(!r->get_resource("/users/someone-else"));
  CHECK(r->get_resource(op.resource));
}

// ---------------------------------------------------------------- issue 15: resource ownership

namespace {

// What a worker would report: the operation ends in state, and a completed
// one writes data (or deletes) at resource.
void finish(SecuredApi& api, const std::string& op_id, const std::string& resource, OpState state,
            json data = nullptr, bool deleted = false) {
  Event e;
  e.request_id = op_id;
  e.state = state;
  e.code = state == OpState::completed ? "success" : "refused";
  e.type = "t";
  e.resource = resource;
  e.data = std::move(data);
  e.deleted = deleted;
  REQUIRE(api.gc.run([e](StoreWriter& w, std::vector<Change>& changes) {
                 Change c;
                 if (w.apply_event(e, now_ms(), &c) == StoreWriter::Applied::changed) changes.push_back(std::move(c));
               }).ok());
}

// A user ann creates through the API, whose create a worker then completes
// as asked; its resource path.
std::string created_user(SecuredApi& api, const std::string& email, const std::string& name) {
  auto created = api.call("ann", "POST", "/users", json{{"email", email}, {"name", name}}.dump());
  REQUIRE(created.status == 202);
  std::string path = created.header("X-Resource");
  finish(api, json::parse(created.body)["id"], path, OpState::completed, {{"email", email}, {"name", name}});
  return path;
}

size_t stored_operations(SecuredApi& api) {
  OperationFilter all;
  all.limit = 1000;
  return api.readers.acquire()->list_operations(all).size();
}

// body with every occurrence of id replaced, to compare two answers that
// differ only in the id they name.
std::string without(std::string body, const std::string& id) {
  for (size_t at; (at = body.find(id)) != std::string::npos;) body.replace(at, id.size(), "ID");
  return body;
}

}  // namespace

TEST_CASE("another submitter's PUT and DELETE answer 404 exactly as for an unknown id, and store nothing",
          "[access][ownership]") {
  SecuredApi api;
  std::string path = created_user(api, "a@example.com", "A");
  std::string id = path.substr(std::string("/users/").size());
  REQUIRE(stored_operations(api) == 1);

  std::string unknown = "01900000-0000-7000-8000-000000000000";
  auto put = api.call("bob", "PUT", path, R"({"name":"Bob was here"})");
  auto del = api.call("bob", "DELETE", path);
  auto put_unknown = api.call("bob", "PUT", "/users/" + unknown, R"({"name":"Bob was here"})");
  auto del_unknown = api.call("bob", "DELETE", "/users/" + unknown);
  auto get = api.call("bob", "GET", path);
  CHECK(put.status == 404);
  CHECK(del.status == 404);
  CHECK(put.content_type == "application/problem+json");
  // The same answer as for an id that does not exist, on writes and reads.
  CHECK(put_unknown.status == 404);
  CHECK(del_unknown.status == 404);
  CHECK(without(put.body, id) == without(put_unknown.body, unknown));
  CHECK(without(del.body, id) == without(del_unknown.body, unknown));
  CHECK(put.body == get.body);
  CHECK(json::parse(put.body)["code"] == "not_found");
  CHECK(stored_operations(api) == 1);  // nothing stored, so nothing dispatched
  CHECK(json::parse(api.call("bob", "GET", "/operations").body)["items"].empty());

  // The owner still reads her user as she wrote it, and still writes it.
  auto mine = api.call("ann", "GET", path);
  REQUIRE(mine.status == 200);
  CHECK(json::parse(mine.body)["name"] == "A");
  CHECK(api.call("ann", "PUT", path, R"({"name":"Ann"})").status == 202);
  CHECK(stored_operations(api) == 2);
}

TEST_CASE("an admin may write another's resource, and ownership does not move with the write",
          "[access][ownership]") {
  SecuredApi api;
  std::string path = created_user(api, "a@example.com", "A");

  auto put = api.call("root", "PUT", path, R"({"name":"Root"})");
  REQUIRE(put.status == 202);
  finish(api, json::parse(put.body)["id"], path, OpState::completed, {{"email", "a@example.com"}, {"name", "Root"}});
  // Before the fix, read ownership followed the last writer: ann lost her user.
  auto mine = api.call("ann", "GET", path);
  REQUIRE(mine.status == 200);
  CHECK(json::parse(mine.body)["name"] == "Root");
  CHECK(json::parse(api.call("ann", "GET", "/users").body)["items"].size() == 1);
  CHECK(api.call("root", "GET", path).status == 200);
  CHECK(api.call("bob", "GET", path).status == 404);
  CHECK(json::parse(api.call("bob", "GET", "/users").body)["items"].empty());
  CHECK(api.call("ann", "PUT", path, R"({"name":"Ann"})").status == 202);
  CHECK(api.call("root", "DELETE", path).status == 202);
}

TEST_CASE("ownership is fixed when the create is accepted: a write racing a pending create is checked",
          "[access][ownership]") {
  SecuredApi api;
  auto created = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  REQUIRE(created.status == 202);
  std::string path = created.header("X-Resource");  // still pending: no worker has run it
  CHECK(api.call("bob", "PUT", path, R"({"name":"B"})").status == 404);
  CHECK(api.call("bob", "DELETE", path).status == 404);
  CHECK(api.call("ann", "PUT", path, R"({"name":"Ann"})").status == 202);
  CHECK(stored_operations(api) == 2);
}

TEST_CASE("a rejected create owns nothing, and a deleted resource is unknown to all but an admin",
          "[access][ownership]") {
  SecuredApi api;
  auto refused = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  REQUIRE(refused.status == 202);
  std::string refused_path = refused.header("X-Resource");
  finish(api, json::parse(refused.body)["id"], refused_path, OpState::rejected);
  CHECK(api.call("ann", "PUT", refused_path, R"({"name":"A"})").status == 404);

  std::string path = created_user(api, "b@example.com", "B");
  auto del = api.call("ann", "DELETE", path);
  REQUIRE(del.status == 202);
  finish(api, json::parse(del.body)["id"], path, OpState::completed, nullptr, /*deleted=*/true);
  CHECK(api.call("ann", "GET", path).status == 404);
  CHECK(api.call("ann", "PUT", path, R"({"name":"B"})").status == 404);
  CHECK(api.call("bob", "PUT", path, R"({"name":"B"})").status == 404);
  CHECK(api.call("root", "PUT", path, R"({"name":"B"})").status == 202);  // the service answers for it
}

TEST_CASE("ownership survives the pruning of the create operation", "[access][ownership]") {
  SecuredApi api;
  std::string path = created_user(api, "a@example.com", "A");
  int pruned = 0;
  REQUIRE(api.gc.run([&](StoreWriter& w, std::vector<Change>&) { pruned = w.prune(now_ms() + 1000, 100); }).ok());
  REQUIRE(pruned == 1);
  REQUIRE(stored_operations(api) == 0);
  CHECK(api.call("ann", "GET", path).status == 200);
  CHECK(json::parse(api.call("ann", "GET", "/users").body)["items"].size() == 1);
  CHECK(api.call("bob", "GET", path).status == 404);
  CHECK(api.call("bob", "PUT", path, R"({"name":"B"})").status == 404);
  CHECK(api.call("ann", "PUT", path, R"({"name":"Ann"})").status == 202);
}

TEST_CASE("a client-named resource is its first writer's, and a sub-resource is checked against its parent",
          "[access][ownership]") {
  SecuredApi api({}, 0, R"({"routes":[
    {"method":"POST","path":"/boards","command":"create_board","service":"s","resource":"/boards/{id}",
     "body":{}},
    {"method":"POST","path":"/boards/{id}/pins","command":"pin","service":"s","resource":"/boards/{id}/pins/{pin}",
     "body":{}},
    {"method":"PUT","path":"/tags/{name}","command":"tag","service":"s","resource":"/tags/{name}","body":{}}]})");
  auto tag = api.call("ann", "PUT", "/tags/red", "{}");
  REQUIRE(tag.status == 202);
  CHECK(api.call("bob", "PUT", "/tags/red", "{}").status == 404);
  CHECK(api.call("ann", "PUT", "/tags/red", "{}").status == 202);
  // A claim whose command the service refused is freed.
  auto blue = api.call("bob", "PUT", "/tags/blue", "{}");
  REQUIRE(blue.status == 202);
  finish(api, json::parse(blue.body)["id"], "/tags/blue", OpState::rejected);
  CHECK(api.call("ann", "PUT", "/tags/blue", "{}").status == 202);

  auto board = api.call("ann", "POST", "/boards", "{}");
  REQUIRE(board.status == 202);
  std::string b = board.header("X-Resource");
  CHECK(api.call("ann", "POST", b + "/pins", "{}").status == 202);
  CHECK(api.call("bob", "POST", b + "/pins", "{}").status == 404);
  CHECK(api.call("bob", "POST", "/boards/01900000-0000-7000-8000-000000000000/pins", "{}").status == 404);
}

TEST_CASE("a store made before resource_owners gets the owners of its live resources' creates",
          "[access][ownership]") {
  TempDir dir;
  std::string path = dir.path + "/asyncops.db";
  OperationRecord create = new_op(), update = new_op("update_user");
  create.owner = "ann";
  update.owner = "bob";  // the pre-fix attack: bob's write was the last
  update.origin = "PUT " + create.resource;
  update.resource = create.resource;
  {
    auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
    w->begin();
    w->insert_operation(&create);
    w->insert_operation(&update);
    Change c;
    Event done = event_for(create, OpState::completed, "success");
    done.data = json{{"name", "A"}};
    w->apply_event(done, now_ms(), &c);
    Event overwrite = event_for(update, OpState::completed, "success");
    overwrite.data = json{{"name", "B"}};
    w->apply_event(overwrite, now_ms(), &c);
    w->commit();
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("DROP TABLE resource_owners");
    db.exec("DELETE FROM meta WHERE key = 'resource_owners'");
  }
  auto w = std::move(SqliteStoreWriter::open(path, SyncMode::normal).value());
  auto r = std::move(SqliteStoreReader::open(path).value());
  auto res = r->get_resource(create.resource);
  REQUIRE(res);
  CHECK(res->owner == "ann");
  CHECK(r->list_resources("/users", "", 10, std::string("bob")).empty());
}

TEST_CASE("streams take ?access_token=, and nothing else does (issue 12)", "[access][tickets]") {
  SecuredApi api;
  auto created = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  REQUIRE(created.status == 202);
  std::string id = json::parse(created.body)["id"];
  auto stream = [&](const std::string& path, std::map<std::string, std::string> query) {
    ApiRequest r;
    r.method = "GET";
    r.path = path;
    r.query = std::move(query);
    return api.gw->begin(r);
  };
  auto events = stream("/events", {{"access_token", "ann"}});
  CHECK(events.status == 200);
  REQUIRE(events.stream);
  CHECK(events.stream->owner == std::optional<std::string>("ann"));  // scoped as with the header
  auto mine = stream("/operations/" + id + "/events", {{"access_token", "ann"}});
  CHECK(mine.status == 200);
  CHECK(mine.stream);
  // Owner scoping exactly as with the header: bob's token sees a 404.
  CHECK(stream("/operations/" + id + "/events", {{"access_token", "bob"}}).status == 404);
  CHECK(stream("/events", {{"access_token", "forged"}}).status == 401);
  CHECK(stream("/events", {}).status == 401);
  // Not on any other endpoint.
  CHECK(stream("/operations", {{"access_token", "ann"}}).status == 401);
  CHECK(stream("/operations/" + id, {{"access_token", "ann"}}).status == 401);
  CHECK(stream("/operations/" + id + "/history", {{"access_token", "ann"}}).status == 401);
  ApiRequest post;
  post.method = "POST";
  post.path = "/users";
  post.headers["content-type"] = "application/json";
  post.body = R"({"email":"b@example.com","name":"B"})";
  post.query = {{"access_token", "ann"}};
  CHECK(api.gw->handle(post).status == 401);
  CHECK(is_stream_request(ApiRequest{"GET", "/ws", {}, {}, "", "", "", "", 0}));
  CHECK(is_stream_request(ApiRequest{"GET", "/hubs/operations", {}, {}, "", "", "", "", 0}));
  CHECK_FALSE(is_stream_request(ApiRequest{"GET", "/operations/a/b/events", {}, {}, "", "", "", "", 0}));
  CHECK_FALSE(is_stream_request(ApiRequest{"POST", "/events", {}, {}, "", "", "", "", 0}));
}

TEST_CASE("POST /tickets: a single-use stream ticket bound to the caller (issue 12)", "[access][tickets]") {
  SecuredApi api;
  auto created = api.call("ann", "POST", "/users", R"({"email":"a@example.com","name":"A"})");
  std::string id = json::parse(created.body)["id"];
  CHECK(api.call("", "POST", "/tickets").status == 401);
  auto issued = api.call("ann-reader", "POST", "/tickets");
  REQUIRE(issued.status == 200);
  std::string ticket = json::parse(issued.body)["ticket"];
  CHECK(json::parse(issued.body)["expires_in"] == 60);
  auto stream = [&](const std::string& path, const std::string& t) {
    ApiRequest r;
    r.method = "GET";
    r.path = path;
    r.query = {{"ticket", t}};
    return api.gw->begin(r);
  };
  // Not on other endpoints (and it is not used up there).
  CHECK(stream("/operations/" + id, ticket).status == 401);
  auto first = stream("/operations/" + id + "/events", ticket);
  CHECK(first.status == 200);
  CHECK(first.stream);
  auto again = stream("/operations/" + id + "/events", ticket);
  CHECK(again.status == 401);
  CHECK(again.header("WWW-Authenticate").find("invalid_token") != std::string::npos);
  // Bound to its principal: bob's ticket sees ann's operation as unknown,
  // and /events is scoped to bob.
  std::string bobs = json::parse(api.call("bob", "POST", "/tickets").body)["ticket"];
  CHECK(stream("/operations/" + id + "/events", bobs).status == 404);
  std::string bobs2 = json::parse(api.call("bob", "POST", "/tickets").body)["ticket"];
  auto all = stream("/events", bobs2);
  REQUIRE(all.stream);
  CHECK(all.stream->owner == std::optional<std::string>("bob"));
  std::string admin = json::parse(api.call("root", "POST", "/tickets").body)["ticket"];
  auto ws = stream("/ws", admin);
  ApiRequest up;
  CHECK(ws.status == 426);  // no Upgrade header, but admitted
}
