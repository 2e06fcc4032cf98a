// The cloud path's cost: one HTTP round trip on loopback vs the generation it carries (same request,
// in-process), then requests/s and p50/p95 latency with 1, 4 and 16 concurrent clients. Usage: bench_cloud
// [model_dir]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "cloud/cloud_client.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "io/checkpoint.h"
#include "runtime/runtime.h"

using namespace handoff;
using Clock = std::chrono::steady_clock;

static double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

int main(int argc, char** argv) {
  configure_threads(1);
  const std::string dir = argc > 1 ? argv[1] : std::string(HANDOFF_SOURCE_DIR) + "/models/cloud-chain";
  auto responder = std::make_shared<LocalModelResponder>(load_checkpoint(dir), "cloud");
  ServerOptions so;
  so.port = 0;
  so.log = [](const std::string&) {};
  ModelServer server(responder, so);
  server.start();
  CloudClientOptions co;
  co.base_url = server.url() + "/v1";
  co.model = "cloud";
  CloudClient client(co);
  ChatOptions chat;
  chat.temperature = 0.0;
  chat.max_tokens = 96;
  const std::vector<std::string> queries = {"Q:23 +4 -7 +2 -5 +9 -1 +3 -6?", "Q:41 -3 +8?",
                                            "Q:12 +7 +5 -9 +4?"};

  // 1. Overhead of the HTTP path: same requests, in-process vs through the server.
  ChatCompletionRequest req;
  req.params.model = "cloud";
  req.params.max_tokens = 96;
  req.params.temperature = 0.0;
  double direct = 0, http = 0;
  const int reps = 20;
  for (int r = 0; r < reps + 2; ++r)
    for (const auto& q : queries) {
      req.messages = {{"user", q}};
      auto t0 = Clock::now();
      responder->respond(req);
      const double d = ms_since(t0);
      t0 = Clock::now();
      client.chat({{"user", q}}, chat);
      const double h = ms_since(t0);
      if (r >= 2) direct += d, http += h;  // first two rounds warm up
    }
  const double n = reps * queries.size();
  std::printf(
      "generation in-process %.2f ms/request, through HTTP on loopback %.2f ms: overhead %.2f ms (%.1f %%)\n",
      direct / n, http / n, (http - direct) / n, 100.0 * (http - direct) / direct);

  // 2. Concurrency: requests are queued on the server (one CPU model), so throughput stays flat and latency
  // grows.
  for (int clients : {1, 4, 16}) {
    const int per_client = 48 / clients;
    std::vector<double> lat;
    std::mutex mu;
    auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        for (int i = 0; i < per_client; ++i) {
          auto t = Clock::now();
          client.chat({{"user", queries[(c + i) % queries.size()]}}, chat);
          std::lock_guard<std::mutex> lock(mu);
          lat.push_back(ms_since(t));
        }
      });
    for (auto& t : threads) t.join();
    const double secs = ms_since(t0) / 1000.0;
    std::sort(lat.begin(), lat.end());
    std::printf("%2d clients: %.1f requests/s, p50 %.1f ms, p95 %.1f ms\n", clients, lat.size() / secs,
                lat[lat.size() / 2], lat[static_cast<size_t>(0.95 * (lat.size() - 1))]);
  }
  server.stop();
  return 0;
}
