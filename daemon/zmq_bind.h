#pragma once
// Binding the daemon's ZeroMQ sockets (commands, control, events) the one
// way: the socket's setup (CURVE, when configured) before the bind, and an
// ipc socket file readable and writable by its owner alone.
#include <sys/stat.h>

#include <functional>
#include <string>

#include <zmq.hpp>

namespace asyncops {

// Calls setup(s) when set, binds s to endpoint, and for ipc:// makes the
// socket file mode 0600. Throws zmq::error_t as bind() does.
inline void bind_owner_only(zmq::socket_t& s, const std::string& endpoint,
                            const std::function<void(zmq::socket_t&)>& setup) {
  if (setup) setup(s);
  s.bind(endpoint);
  if (endpoint.rfind("ipc://", 0) == 0) ::chmod(endpoint.substr(6).c_str(), 0600);
}

}  // namespace asyncops
