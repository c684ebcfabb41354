#pragma once
// Dispatcher: forwards committed commands to workers over ZeroMQ PUSH, one
// bound socket per service. A command that no worker can take yet (no peer
// connected, or every peer's queue full) stays in the dispatcher's backlog
// and is retried; it is also safe in the store, which redispatches every
// unfinished operation after a restart.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "shared/envelope.h"
#include "shared/result.h"

namespace asyncops {

class Dispatcher {
 public:
  // endpoints: service -> endpoint to bind, e.g. "users" -> "ipc:///data/commands.users.ipc".
  // on_sent: called on the dispatcher thread with (operation id, attempt)
  // for each command handed to ZeroMQ.
  using SentHook = std::function<void(std::vector<std::pair<std::string, int>>)>;
  Dispatcher(zmq::context_t& ctx, std::map<std::string, std::string> endpoints,
             SentHook on_sent = nullptr);
  ~Dispatcher();

  // Creates and binds the sockets; called once, before start(), by the thread
  // that starts the dispatcher. The dispatcher thread owns them afterwards.
  Result<bool> bind();
  void start();
  void stop();

  // Thread-safe. Commands for a service with no socket are logged and dropped
  // from memory (they remain pending in the store).
  void enqueue(std::vector<Command> commands);

  uint64_t sent() const { return m_sent.load(); }
  size_t backlog() const { return m_backlog_size.load(); }

 private:
  void run();

  zmq::context_t& m_ctx;
  std::map<std::string, std::string> m_endpoints;
  SentHook m_on_sent;
  std::map<std::string, zmq::socket_t> m_sockets;  // owned by the dispatcher thread after start()

  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::vector<Command> m_incoming;  // GUARDED_BY(m_mutex)
  bool m_stopping = false;          // GUARDED_BY(m_mutex)

  std::map<std::string, std::deque<Command>> m_pending;  // owned by the dispatcher thread
  std::atomic<uint64_t> m_sent{0};
  std::atomic<size_t> m_backlog_size{0};
  std::thread m_thread;
};

}  // namespace asyncops
