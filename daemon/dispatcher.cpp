#include "daemon/dispatcher.h"

#include <sys/stat.h>

#include <zmq_addon.hpp>

#include "shared/log.h"

namespace asyncops {

Dispatcher::Dispatcher(zmq::context_t& ctx, std::map<std::string, std::string> endpoints,
                       SentHook on_sent)
    : m_ctx(ctx), m_endpoints(std::move(endpoints)), m_on_sent(std::move(on_sent)) {}

Dispatcher::~Dispatcher() { stop(); }

Result<bool> Dispatcher::bind() {
  for (const auto& [service, endpoint] : m_endpoints) {
    try {
      zmq::socket_t s(m_ctx, zmq::socket_type::push);
      s.set(zmq::sockopt::linger, 0);
      // Queue only to peers whose connection is complete: with no worker,
      // send() says EAGAIN and the command stays in our backlog instead of a
      // ZeroMQ pipe that would die with a peer.
      s.set(zmq::sockopt::immediate, 1);
      s.set(zmq::sockopt::sndhwm, 1000);
      s.bind(endpoint);
      if (endpoint.rfind("ipc://", 0) == 0) ::chmod(endpoint.substr(6).c_str(), 0600);
      m_sockets.emplace(service, std::move(s));
    } catch (const zmq::error_t& e) {
      return Error{"cannot bind commands endpoint " + endpoint + " for service " + service + ": " +
                   e.what()};
    }
  }
  return true;
}

void Dispatcher::start() { m_thread = std::thread([this] { run(); }); }

void Dispatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_stopping = true;
  }
  m_cv.notify_all();
  if (m_thread.joinable()) m_thread.join();
  m_sockets.clear();
}

void Dispatcher::enqueue(std::vector<Command> commands) {
  {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_incoming.empty()) {
      m_incoming = std::move(commands);
    } else {
      for (auto& c : commands) m_incoming.push_back(std::move(c));
    }
  }
  m_cv.notify_one();
}

void Dispatcher::run() {
  std::vector<Command> incoming;
  for (;;) {
    size_t backlog = 0;
    for (const auto& [s, q] : m_pending) backlog += q.size();
    m_backlog_size = backlog;
    {
      std::unique_lock<std::mutex> lock(m_mutex);
      // With a backlog, retry soon; otherwise sleep until there is work.
      auto wait = backlog ? std::chrono::milliseconds(5) : std::chrono::milliseconds(500);
      m_cv.wait_for(lock, wait, [&] { return m_stopping || !m_incoming.empty(); });
      if (m_stopping) return;
      incoming.swap(m_incoming);
    }
    for (Command& c : incoming) {
      if (!m_sockets.count(c.service)) {
        log_error("no commands endpoint for service; the operation stays pending",
                  {{"service", c.service}, {"id", c.id}});
        continue;
      }
      m_pending[c.service].push_back(std::move(c));
    }
    incoming.clear();
    std::vector<std::pair<std::string, int>> sent;
    for (auto& [service, queue] : m_pending) {
      zmq::socket_t& sock = m_sockets.at(service);
      while (!queue.empty()) {
        Frames f = encode(queue.front());
        std::array<zmq::const_buffer, 2> parts = {zmq::buffer(f.kind), zmq::buffer(f.body)};
        try {
          if (!zmq::send_multipart(sock, parts, zmq::send_flags::dontwait)) break;  // EAGAIN
        } catch (const zmq::error_t& e) {
          log_error("send to workers failed", {{"service", service}, {"error", e.what()}});
          break;
        }
        sent.emplace_back(std::move(queue.front().id), queue.front().attempt);
        queue.pop_front();
        m_sent++;
      }
    }
    if (!sent.empty() && m_on_sent) m_on_sent(std::move(sent));
  }
}

}  // namespace asyncops
