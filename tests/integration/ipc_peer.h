#pragma once
// IpcPeer: a raw ZeroMQ peer of the daemon under test, connected to one of
// its ipc sockets (DATA_DIR/NAME.ipc), for tests that play a worker or a
// publisher by hand.
#include <string>

#include <zmq.hpp>

namespace asyncops::it {

class IpcPeer {
 protected:
  IpcPeer(const std::string& data_dir, zmq::socket_type type, const std::string& ipc_name, int linger_ms)
      : m_socket(m_ctx, type) {
    m_socket.set(zmq::sockopt::linger, linger_ms);
    m_socket.connect("ipc://" + data_dir + "/" + ipc_name + ".ipc");
  }

  zmq::context_t m_ctx{1};
  zmq::socket_t m_socket;
};

}  // namespace asyncops::it
