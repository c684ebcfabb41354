// asyncops-bench-ceiling: the ceiling for the benchmark. A bare cpp-httplib
// server configured like asyncopsd's front end (tcp_nodelay, long keep-alive,
// one thread per connection) that answers every POST with an empty 202 and
// does nothing else. Whatever asyncopsd achieves is read as a ratio of what
// this server achieves on the same machine in the same run.
//
//   asyncops-bench-ceiling [--host 127.0.0.1] [--port 0] [--threads 64]
//                          [--url-file PATH] [--keep-alive-max N]
// --keep-alive-max: requests per connection before the server closes it
// (default 10^9, as asyncopsd; cpp-httplib's own default is 5).
//
// Writes "http://HOST:PORT\n" to --url-file once it listens; stops on
// SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <httplib.h>

#include "args.h"
#include "shared/stop_signals.h"
#include "url_file.h"

namespace {

void usage() {
  std::cerr << "usage: asyncops-bench-ceiling [--host H] [--port P] [--threads N] [--url-file PATH] "
               "[--keep-alive-max N]\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", url_file;
  int port = 0;
  size_t threads = 64;
  long keep_alive_max = 1000000000;
  FlagReader flags(argc, argv, usage);
  for (std::string a; flags.next(&a);) {
    if (a == "--host") host = flags.value();
    else if (a == "--port") port = std::atoi(flags.value().c_str());
    else if (a == "--threads") threads = static_cast<size_t>(std::atol(flags.value().c_str()));
    else if (a == "--url-file") url_file = flags.value();
    else if (a == "--keep-alive-max") keep_alive_max = std::atol(flags.value().c_str());
    else flags.fail();
  }
  if (keep_alive_max < 1) {
    std::cerr << "--keep-alive-max must be at least 1\n";
    return 2;
  }
  if (threads < 1 || threads > 4096) {
    std::cerr << "--threads must be in 1..4096\n";
    return 2;
  }

  sigset_t signals = asyncops::block_stop_signals();

  httplib::Server s;
  // cpp-httplib runs a whole keep-alive connection on one pool thread, so
  // the pool must have at least as many threads as the load has connections.
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(static_cast<size_t>(keep_alive_max));
  s.set_keep_alive_timeout(10);
  s.set_read_timeout(10);
  s.set_write_timeout(10);
  auto accepted = [](const httplib::Request&, httplib::Response& res) { res.status = 202; };
  s.Post(".*", accepted);
  s.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"status\":\"ok\"}", "application/json");
  });

  int bound = port == 0 ? s.bind_to_any_port(host) : (s.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    std::cerr << "cannot listen on " << host << ":" << port << "\n";
    return 1;
  }
  std::thread server([&s] { s.listen_after_bind(); });
  std::string url = "http://" + host + ":" + std::to_string(bound);
  if (!url_file.empty()) write_url_file(url_file, url);
  std::cout << "ceiling ready: " << url << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  s.stop();
  server.join();
  return 0;
}
