#pragma once
// Router: METHOD + path -> handler, with the 404/405 distinction that
// cpp-httplib's regex routing cannot make. HEAD is served by GET routes.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "daemon/routes.h"

namespace asyncops {

template <class Handler>
class Router {
 public:
  void add(std::string method, PathTemplate path, Handler handler) {
    m_entries.push_back({std::move(method), std::move(path), std::move(handler)});
  }

  struct Match {
    enum Kind { found, method_not_allowed, not_found } kind = not_found;
    const Handler* handler = nullptr;
    std::map<std::string, std::string> params;
    std::vector<std::string> allow;  // for method_not_allowed
  };

  Match match(const std::string& method, const std::string& path) const {
    Match m;
    const std::string& wanted = method == "HEAD" ? std::string("GET") : method;
    // The path is split once, not once per route.
    const PathTemplate::Segments segs = PathTemplate::split(path);
    for (const Entry& e : m_entries) {
      if (e.method == wanted) {
        if (!e.path.match(segs, &m.params)) continue;
        m.kind = Match::found;
        m.handler = &e.handler;
        return m;
      }
      if (!e.path.match(segs, nullptr)) continue;
      if (std::find(m.allow.begin(), m.allow.end(), e.method) == m.allow.end()) {
        m.allow.push_back(e.method);
        if (e.method == "GET") m.allow.push_back("HEAD");
      }
    }
    m.kind = m.allow.empty() ? Match::not_found : Match::method_not_allowed;
    return m;
  }

 private:
  struct Entry {
    std::string method;
    PathTemplate path;
    Handler handler;
  };
  std::vector<Entry> m_entries;
};

}  // namespace asyncops
