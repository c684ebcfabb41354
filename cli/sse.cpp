#include "cli/sse.h"

#include <iostream>

#include <httplib.h>

#include "cli/client.h"

namespace asyncops {

namespace {
constexpr char k_bom[] = "\xEF\xBB\xBF";
}

void SseParser::feed(const char* data, size_t len, const std::function<void(const SseEvent&)>& on_event) {
  for (size_t i = 0; i < len; ++i) {
    char c = data[i];
    if (m_bom_seen < 3) {
      // The stream's first bytes may be a BOM, possibly split across reads.
      if (c == k_bom[m_bom_seen]) {
        ++m_bom_seen;
        continue;
      }
      // Not a BOM after all: what matched so far is ordinary text.
      m_buffer.append(k_bom, m_bom_seen);
      m_bom_seen = 3;
    }
    if (c == '\n' && m_after_cr) {  // the LF of a CRLF
      m_after_cr = false;
      continue;
    }
    m_after_cr = c == '\r';
    if (c == '\r' || c == '\n') {
      line(m_buffer, on_event);
      m_buffer.clear();
    } else {
      m_buffer.push_back(c);
    }
  }
}

void SseParser::line(const std::string& l, const std::function<void(const SseEvent&)>& on_event) {
  if (l.empty()) {
    if (m_has_data) {
      if (!m_event.id.empty()) m_last_id = m_event.id;
      on_event(m_event);
    }
    m_event = SseEvent();
    m_has_data = false;
    return;
  }
  if (l[0] == ':') return;  // comment: a heartbeat
  auto colon = l.find(':');
  std::string field = l.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : l.substr(colon + 1);
  if (!value.empty() && value[0] == ' ') value.erase(0, 1);
  if (field == "data") {
    if (m_has_data) m_event.data.push_back('\n');
    m_event.data += value;
    m_has_data = true;
  } else if (field == "id") {
    if (value.find('\0') == std::string::npos) m_event.id = value;
  } else if (field == "event") {
    m_event.event = value;
  } else if (field == "retry") {
    if (!value.empty() && value.find_first_not_of("0123456789") == std::string::npos && value.size() < 9) {
      m_retry_ms = std::stoi(value);
    }
  }
}

StreamResult follow_stream(const std::string& base_url, const std::string& path,
                           const std::string& last_id,
                           const std::function<bool(const SseEvent&)>& on_event, int idle_timeout_s,
                           const std::function<void()>& on_connected) {
  StreamResult result;
  result.last_id = last_id;
  httplib::Client client(base_url);
  client.set_connection_timeout(3);
  client.set_read_timeout(idle_timeout_s);
  client.set_tcp_nodelay(true);
  configure_access(client);
  httplib::Headers headers = {{"Accept", "text/event-stream"}};
  if (!last_id.empty()) headers.emplace("Last-Event-ID", last_id);
  SseParser parser;
  bool stopped = false;
  int status = 0;
  std::string error_body;
  auto r = client.Get(
      path, headers,
      [&](const httplib::Response& res) {
        status = res.status;
        for (const auto& [k, v] : res.headers) result.response.headers.emplace(k, v);
        if (status == 200 && on_connected) on_connected();
        return true;
      },
      [&](const char* data, size_t len) {
        if (status != 200) {
          error_body.append(data, len);
          return error_body.size() < 65536;
        }
        parser.feed(data, len, [&](const SseEvent& e) {
          if (stopped) return;
          if (!e.id.empty()) result.last_id = e.id;
          if (!on_event(e)) stopped = true;
        });
        return !stopped;
      });
  if (stopped) {
    result.end = StreamEnd::stopped;
    return result;
  }
  if (!r) {
    result.end = StreamEnd::broken;
    result.response.transport_error = "stream from " + base_url + " broke (" + httplib::to_string(r.error()) + ")";
    return result;
  }
  result.response.reached = true;
  result.response.status = r->status;
  if (r->status == 200 || r->status == 204) {
    result.end = StreamEnd::ended;
    return result;
  }
  result.end = StreamEnd::http_error;
  result.response.body = error_body;
  result.response.json = nlohmann::json::parse(error_body, nullptr, false);
  if (result.response.json.is_discarded()) result.response.json = nullptr;
  return result;
}

void ConnectionNotices::lost() {
  if (m_lost) return;
  m_lost = true;
  std::cerr << "asyncops: connection lost, retrying" << std::endl;
}

void ConnectionNotices::connected() {
  if (!m_lost) return;
  m_lost = false;
  std::cerr << "asyncops: connection back" << std::endl;
}

}  // namespace asyncops
