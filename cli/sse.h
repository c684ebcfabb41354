#pragma once
// A Server-Sent Events client for the CLI: a parser for the
// text/event-stream format, and follow_stream(), which reads one stream
// until it ends, breaks, or the caller stops it.
#include <functional>
#include <map>
#include <string>

#include "cli/client.h"

namespace asyncops {

struct SseEvent {
  std::string id;
  std::string event = "message";
  std::string data;
};

// Feeds bytes in; calls on_event for each complete event (a blank line ends
// one). Comments (":" lines) are skipped. Follows the WHATWG rules: a field
// without a colon is a name with an empty value, one leading space after the
// colon is dropped, data lines join with "\n", CR, LF and CRLF all end lines,
// an id containing NUL is ignored, retry takes ASCII digits only, and one
// UTF-8 byte order mark at the very start of the stream is skipped.
class SseParser {
 public:
  void feed(const char* data, size_t len, const std::function<void(const SseEvent&)>& on_event);
  int retry_ms() const { return m_retry_ms; }
  const std::string& last_id() const { return m_last_id; }

 private:
  void line(const std::string& l, const std::function<void(const SseEvent&)>& on_event);
  std::string m_buffer;
  SseEvent m_event;
  bool m_has_data = false;
  bool m_after_cr = false;
  size_t m_bom_seen = 0;  // bytes of a leading BOM matched so far; 3: past the start
  int m_retry_ms = -1;
  std::string m_last_id;
};

enum class StreamEnd {
  ended,        // the server closed the stream after a normal end (or answered 204)
  broken,       // the connection failed or dropped: reconnect with Last-Event-ID
  stopped,      // on_event returned false
  http_error,   // the server answered with an error status (see response)
};

struct StreamResult {
  StreamEnd end = StreamEnd::broken;
  std::string last_id;     // the last event id seen (or the one passed in)
  ApiResponse response;    // for http_error: the status and problem body
};

// GETs path as an event stream, sending Last-Event-ID when last_id is not
// empty. on_event returns false to stop. on_connected, if set, is called
// once the server has answered 200 (before any event).
StreamResult follow_stream(const std::string& base_url, const std::string& path,
                           const std::string& last_id,
                           const std::function<bool(const SseEvent&)>& on_event,
                           int idle_timeout_s = 60, const std::function<void()>& on_connected = nullptr);

// Tells the user on stderr when a followed stream drops and when it is back
// (tail, watch): one line each, not one per retry.
class ConnectionNotices {
 public:
  void lost();       // "connection lost, retrying"
  void connected();  // "connection back" after a loss

 private:
  bool m_lost = false;
};

}  // namespace asyncops
