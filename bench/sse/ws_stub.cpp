// asyncops-bench-ws-stub: a tiny Boost.Beast WebSocket server speaking the
// /ws protocol of issue 11, to check asyncops-bench-sse's WebSocket client
// (`asyncops-bench-sse --ws-selftest`) before the daemon serves /ws. Not a
// model of the daemon: for each {"subscribe": "<id>"} it pings once, sends
// {"seq": 1..3, "operation": {...}} for pending, processing and completed
// (the last one split into two fragments, to exercise reassembly), then
// {"end": "<id>"}, and waits for the client's close.
//
//   asyncops-bench-ws-stub [--port 0] [--url-file PATH]
// Serves until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using nlohmann::json;

namespace {

// One blocking connection per thread: enough for a self-test.
void serve(tcp::socket socket) {
  try {
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.accept();
    beast::flat_buffer buf;
    ws.read(buf);
    json req = json::parse(beast::buffers_to_string(buf.data()), nullptr, false);
    buf.consume(buf.size());
    std::string id = req.is_object() && req["subscribe"].is_string() ? req["subscribe"].get<std::string>() : "";
    if (id.empty()) {
      ws.text(true);
      ws.write(asio::buffer(json{{"error", {{"status", 400}, {"title", "subscribe needs an id"}}}}.dump()));
      ws.close(websocket::close_code::policy_error);
      return;
    }
    ws.ping({});
    const char* states[] = {"pending", "processing", "completed"};
    for (int seq = 1; seq <= 3; ++seq) {
      std::string msg = json{{"seq", seq},
                             {"operation", {{"id", id}, {"state", states[seq - 1]},
                                            {"updated_at", "2026-11-29T00:00:00.000Z"}}}}
                            .dump();
      ws.text(true);
      if (seq == 3) {  // two fragments
        size_t half = msg.size() / 2;
        ws.write_some(false, asio::buffer(msg.data(), half));
        ws.write_some(true, asio::buffer(msg.data() + half, msg.size() - half));
      } else {
        ws.write(asio::buffer(msg));
      }
    }
    ws.write(asio::buffer(json{{"end", id}}.dump()));
    // The client closes after the end message; read until its close frame.
    for (;;) ws.read(buf);
  } catch (const std::exception&) {
    // websocket::error::closed, or the client went away: done either way.
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  std::string url_file;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--url-file") url_file = argv[i + 1];
  }
  signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc;
  tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
  std::string url = "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  if (!url_file.empty()) {
    std::ofstream(url_file + ".tmp") << url << "\n";
    std::rename((url_file + ".tmp").c_str(), url_file.c_str());
  }
  std::cout << "ws stub ready: " << url << std::endl;
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { acceptor.close(); });
  std::function<void()> accept = [&] {
    acceptor.async_accept([&](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      std::thread(serve, std::move(s)).detach();
      accept();
    });
  };
  accept();
  ioc.run();
  return 0;
}
