#include "workers/external/http_handler.h"

#include <time.h>

#include <atomic>
#include <cctype>
#include <thread>

#include <httplib.h>

#include "shared/json_limits.h"
#include "shared/mutex.h"

namespace asyncops {
namespace {

using Clock = std::chrono::steady_clock;

JsonLimits body_limits() {
  JsonLimits l;
  l.max_bytes = k_max_event_bytes;
  l.max_depth = k_max_message_depth - 1;
  l.max_values = k_max_event_values;
  return l;
}

bool is_json(const std::string& content_type) {
  std::string ct;
  for (char c : content_type) ct += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ct.find("json") != std::string::npos;
}

std::string excerpt(const std::string& body) {
  std::string t = body.substr(0, 1024);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.pop_back();
  return t;
}

}  // namespace

Result<std::string> expand_url_path(const std::string& path_template, const nlohmann::json& params) {
  std::string out;
  size_t i = 0;
  while (i < path_template.size()) {
    char c = path_template[i];
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    size_t close = path_template.find('}', i);
    if (close == std::string::npos) return Error{"an unclosed { in the url"};
    std::string name = path_template.substr(i + 1, close - i - 1);
    if (!params.is_object() || !params.contains(name) || !params[name].is_string()) {
      return Error{"the url names {" + name + "}, which the command's params do not have"};
    }
    for (unsigned char ch : params[name].get<std::string>()) {
      if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
        out += static_cast<char>(ch);
      } else {
        static const char* hex = "0123456789ABCDEF";
        out += '%';
        out += hex[ch >> 4];
        out += hex[ch & 15];
      }
    }
    i = close + 1;
  }
  return out;
}

int64_t parse_retry_after(const std::string& value) {
  std::string v = value;
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.erase(0, 1);
  if (v.empty()) return -1;
  if (std::all_of(v.begin(), v.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    if (v.size() > 9) return 999999999LL * 1000;
    return std::stoll(v) * 1000;
  }
  tm t{};
  const char* end = ::strptime(v.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &t);
  if (!end || *end != '\0') return -1;
  time_t at = ::timegm(&t);
  int64_t ms = (static_cast<int64_t>(at) - static_cast<int64_t>(::time(nullptr))) * 1000;
  return ms < 0 ? 0 : ms;
}

std::string rejection_code(int status, const std::string& content_type, const std::string& body) {
  std::string fallback = "http_" + std::to_string(status);
  if (!is_json(content_type)) return fallback;
  BoundedJson j = parse_json_within(body, body_limits());
  if (j.violation != JsonViolation::none || !j.value.is_object()) return fallback;
  auto usable = [](const std::string& s) { return !s.empty() && s.size() <= k_max_id_bytes; };
  if (j.value.contains("code") && j.value["code"].is_string()) {
    std::string code = j.value["code"].get<std::string>();
    if (usable(code)) return clean_text(code);
  }
  if (j.value.contains("type") && j.value["type"].is_string()) {
    std::string type = j.value["type"].get<std::string>();
    while (!type.empty() && type.back() == '/') type.pop_back();
    auto cut = type.find_last_of("/#:");
    std::string last = cut == std::string::npos ? type : type.substr(cut + 1);
    if (usable(last) && last != "about:blank" && type != "about:blank") return clean_text(last);
  }
  return fallback;
}

Result<std::unique_ptr<HttpHandler>> HttpHandler::create(HttpOptions options) {
  const std::string url = options.url;  // a copy: options is moved from below
  auto sep = url.find("://");
  if (sep == std::string::npos) return Error{"url " + url + ": expected http://HOST[:PORT]/PATH or https://…"};
  std::string scheme = url.substr(0, sep);
  if (scheme != "http" && scheme != "https") return Error{"url " + url + ": the scheme must be http or https"};
  auto slash = url.find('/', sep + 3);
  std::string host = url.substr(sep + 3, slash == std::string::npos ? std::string::npos : slash - sep - 3);
  if (host.empty()) return Error{"url " + url + ": no host"};
  std::unique_ptr<HttpHandler> h(new HttpHandler(std::move(options)));
  h->m_origin = scheme + "://" + host;
  h->m_path_template = slash == std::string::npos ? "/" : url.substr(slash);
  return h;
}

RunResult HttpHandler::handle(const Command& cmd, const RunContext& ctx) {
  auto path = expand_url_path(m_path_template, cmd.params);
  if (!path) return RunResult::done(outcomes::failed(cmd, "bad_request", path.error()));
  std::string method = m_options.method;
  if (method.empty()) method = cmd.origin.substr(0, cmd.origin.find(' '));
  if (method.empty()) method = "POST";

  httplib::Client client(m_origin);
  // The deadline below is the real one; the socket's own timeouts only
  // back it up, so that a timeout always reads as upstream_timeout.
  auto backstop = ctx.timeout + std::chrono::seconds(2);
  auto seconds = std::chrono::duration_cast<std::chrono::seconds>(backstop).count();
  auto usec = std::chrono::duration_cast<std::chrono::microseconds>(backstop).count() % 1000000;
  client.set_connection_timeout(seconds, usec);
  client.set_read_timeout(seconds, usec);
  client.set_write_timeout(seconds, usec);
  client.set_keep_alive(false);
  if (!m_options.ca_file.empty()) client.set_ca_cert_path(m_options.ca_file);
  client.enable_server_certificate_verification(true);

  httplib::Request req;
  req.method = method;
  req.path = path.value();
  for (const auto& [k, v] : m_options.headers) req.headers.emplace(k, v);
  req.headers.emplace("Idempotency-Key", cmd.id);
  req.headers.emplace("X-Request-Id", cmd.id);
  req.headers.emplace("X-Asyncops-Command", cmd.name);
  req.headers.emplace("X-Asyncops-Attempt", std::to_string(ctx.run));
  req.headers.emplace("Accept", "application/json, application/problem+json");
  bool empty_payload = cmd.payload.is_null() || (cmd.payload.is_object() && cmd.payload.empty());
  if (method != "GET" && method != "HEAD" && !(method == "DELETE" && empty_payload)) {
    req.body = cmd.payload.dump();
    req.headers.emplace("Content-Type", "application/json");
  }
  std::string body;
  bool over = false;
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    if (body.size() + len > k_max_event_bytes) {
      over = true;
      return false;
    }
    body.append(data, len);
    return true;
  };

  // The request runs on a thread of its own, so that this one can stop it
  // (client.stop() shuts its socket) on a cancel or at the deadline.
  struct RequestState {
    Mutex mutex;
    CondVar finished;  // signalled when done is set
    bool done GUARDED_BY(mutex) = false;
    bool sent GUARDED_BY(mutex) = false;
  } state;
  httplib::Response res;              // written by the request thread until it is joined
  httplib::Error err = httplib::Error::Success;
  std::thread request([&] {
    bool ok = client.send(req, res, err);
    MutexLock lock(&state.mutex);
    state.sent = ok;
    state.done = true;
    state.finished.notify_all();
  });
  auto deadline = Clock::now() + ctx.timeout;
  bool canceled = false, timed_out = false;
  for (;;) {
    {
      MutexLock lock(&state.mutex);
      if (state.done) break;
      state.finished.wait_until(&state.mutex, Clock::now() + std::chrono::milliseconds(50));
      if (state.done) break;
    }
    if (ctx.cancel->canceled()) canceled = true;
    if (Clock::now() >= deadline) timed_out = true;
    if (canceled || timed_out) client.stop();  // again each time round: the socket may not be open yet
  }
  request.join();
  bool sent = false;
  {
    MutexLock lock(&state.mutex);
    sent = state.sent;
  }
  if (canceled) return RunResult::stopped();
  if (timed_out || Clock::now() >= deadline) return RunResult::again("upstream_timeout", "the upstream did not answer within " + std::to_string(ctx.timeout.count()) + "ms");
  if (!sent) {
    if (over) {
      return RunResult::again("upstream_error", "the upstream's response body is over " +
                                                    std::to_string(k_max_event_bytes) + " bytes, the event limit");
    }
    return RunResult::again("upstream_unreachable",
                            method + " " + m_origin + req.path + ": " + httplib::to_string(err));
  }
  int status = res.status;
  std::string content_type = res.get_header_value("Content-Type");
  if (status >= 200 && status < 300) {
    if (method == "DELETE") return RunResult::done(outcomes::completed(cmd, {{"deleted", true}}));
    nlohmann::json data = nullptr;
    if (is_json(content_type) && body.find_first_not_of(" \t\r\n") != std::string::npos) {
      BoundedJson j = parse_json_within(body, body_limits());
      if (j.violation != JsonViolation::none) {
        return RunResult::done(outcomes::failed(cmd, "bad_output", "the upstream answered " + std::to_string(status) +
                                                                       " with a body that is not usable JSON: " + j.error));
      }
      if (j.value.is_object() && !(j.value.size() == 1 && j.value.contains("deleted"))) data = std::move(j.value);
    }
    return RunResult::done(outcomes::completed(cmd, std::move(data)));
  }
  bool retryable = status == 408 || status == 425 || status == 429 || status >= 500;
  if (status >= 400 && !retryable) {
    std::string message;
    if (is_json(content_type)) {
      BoundedJson j = parse_json_within(body, body_limits());
      if (j.violation == JsonViolation::none && j.value.is_object()) {
        for (const char* key : {"detail", "message", "title"}) {
          if (j.value.contains(key) && j.value[key].is_string()) {
            message = j.value[key].get<std::string>();
            break;
          }
        }
      }
    }
    if (message.empty()) message = excerpt(body);
    if (message.empty()) message = "the upstream answered " + std::to_string(status);
    if (message.size() > k_max_message_bytes - 4) message.resize(k_max_message_bytes - 4);
    return RunResult::done(outcomes::rejected(cmd, rejection_code(status, content_type, body), message));
  }
  std::string what = "the upstream answered " + std::to_string(status);
  std::string tail = excerpt(body);
  return RunResult::again(status >= 500 || retryable ? "upstream_unavailable" : "upstream_error",
                          tail.empty() ? what : what + ": " + tail,
                          parse_retry_after(res.get_header_value("Retry-After")));
}

}  // namespace asyncops
