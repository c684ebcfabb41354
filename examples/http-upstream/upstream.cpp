// asyncops-example-upstream: a small, slow, synchronous HTTP service to put
// asyncops in front of (examples/http-upstream/README.md).
//
//   POST   /shipments/{id}  {"address": "...", "parcels": N}
//          201 the shipment; 422 problem+json when parcels is not 1 to 100;
//          503 with Retry-After: 1 for the first --fail-first requests
//   DELETE /shipments/{id}  204; 404 problem+json when there is none
//
// Every request takes --delay. Idempotency-Key makes a POST safe to repeat:
// a key seen before gets the first answer again and ships nothing more.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:9090";
  int delay_ms = 300, fail_first = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--listen") listen = argv[i + 1];
    else if (flag == "--delay-ms") delay_ms = std::stoi(argv[i + 1]);
    else if (flag == "--fail-first") fail_first = std::stoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--listen HOST:PORT] [--delay-ms N] [--fail-first N]\n", argv[0]);
      return 2;
    }
  }
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  int port = std::stoi(listen.substr(colon + 1));

  std::mutex mutex;
  std::map<std::string, nlohmann::json> shipments;  // by id
  std::map<std::string, std::pair<int, std::string>> answered;  // by Idempotency-Key
  std::atomic<int> requests{0};
  auto problem = [](httplib::Response& res, int status, const std::string& code, const std::string& detail) {
    res.status = status;
    res.set_content(nlohmann::json{{"type", "https://example.com/problems/" + code}, {"title", code},
                                   {"status", status}, {"detail", detail}}.dump(),
                    "application/problem+json");
  };

  httplib::Server server;
  server.Post(R"(/shipments/([A-Za-z0-9-]+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    if (requests++ < fail_first) {
      res.set_header("Retry-After", "1");
      return problem(res, 503, "busy", "try again in a second");
    }
    std::string key = req.get_header_value("Idempotency-Key");
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = answered.find(key); !key.empty() && it != answered.end()) {
      res.status = it->second.first;
      res.set_content(it->second.second, "application/json");
      return;
    }
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    int parcels = body.is_object() ? body.value("parcels", 0) : 0;
    if (parcels < 1 || parcels > 100) return problem(res, 422, "bad_parcels", "parcels must be 1 to 100");
    nlohmann::json shipment = {{"id", req.matches[1].str()}, {"address", body.value("address", "")},
                               {"parcels", parcels}, {"status", "booked"}};
    shipments[req.matches[1].str()] = shipment;
    answered[key] = {201, shipment.dump()};
    std::printf("shipped %s (request %s)\n", std::string(req.matches[1]).c_str(), key.c_str());
    std::fflush(stdout);
    res.status = 201;
    res.set_content(shipment.dump(), "application/json");
  });
  server.Delete(R"(/shipments/([A-Za-z0-9-]+))", [&](const httplib::Request& req, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    std::lock_guard<std::mutex> lock(mutex);
    if (shipments.erase(req.matches[1].str()) == 0) return problem(res, 404, "shipment_not_found", "no such shipment");
    res.status = 204;
  });
  std::printf("listening on %s\n", listen.c_str());
  std::fflush(stdout);
  if (!server.listen(host, port)) {
    std::fprintf(stderr, "cannot listen on %s\n", listen.c_str());
    return 1;
  }
  return 0;
}
