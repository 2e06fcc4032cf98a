// `handoff serve` under load and under hostile clients, on loopback, in one run (issue 16):
//  1. requests/s and p50/p99 latency at 1, 4, 16, 64 keep-alive clients, one request decoding at a time
//     (--max-batch 1, the old behaviour) vs continuous batching (--max-batch 16: requests join between
//     tokens);
//  2. /health latency while 20 sockets drip their headers;
//  3. peak RSS after a 50 MB chunked body and a gzip body (refused at 1 MiB decoded / at the header).
// Models: the setup (models/cloud-chain answering chain questions, greedy, max_tokens 256, replies of
// different lengths) and a random character-level checkpoint (hidden 256, 4 layers, context 512, 32 tokens).
// Usage: bench_serve [seconds per point = 5] [compute threads = 1] [cloud model dir = models/cloud-chain]
#include <signal.h>
#include <sys/resource.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "io/checkpoint.h"
#include "runtime/runtime.h"
#include "tasks/task.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

long peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

std::string write_model() {
  const fs::path dir = fs::temp_directory_path() / "handoff_bench_serve_model";
  if (!fs::exists(dir / "config.json")) {
    ModelConfig c;
    c.vocab_size = 100;
    c.hidden_size = 256;
    c.intermediate_size = 1024;
    c.num_hidden_layers = 4;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 4;
    c.max_position_embeddings = 512;
    torch::manual_seed(3);
    CausalLM model(c);
    save_checkpoint(dir.string(), model, CharTokenizer());
  }
  return dir.string();
}

// A request body for client c's i-th request.
using BodyFn = std::function<std::string(int)>;

BodyFn random_model_body() {
  return [](int i) {
    return nlohmann::json({{"model", "m"},
                           {"messages", {{{"role", "user"}, {"content", "question " + std::to_string(i)}}}},
                           {"max_tokens", 32},
                           {"temperature", 0}})
        .dump();
  };
}

// The setup: chain questions (train split, difficulties 1-8) to the reference cloud, greedy, the
// collaborative endpoint's cloud max_tokens; replies end at EOS after "Answer: X", so rows differ in length.
BodyFn chain_body() {
  auto task = std::shared_ptr<Task>(make_task("chain"));
  auto prompts = std::make_shared<std::vector<std::string>>();
  std::mt19937_64 rng(5);
  for (int k = 0; k < 512; ++k) prompts->push_back(task->sample(rng, 1 + k % 8, Split::kTrain).prompt);
  return [prompts](int i) {
    return nlohmann::json({{"model", "m"},
                           {"messages", {{{"role", "user"}, {"content", (*prompts)[i % prompts->size()]}}}},
                           {"max_tokens", 256},
                           {"temperature", 0}})
        .dump();
  };
}

struct Point {
  double rps, p50, p99;
  int errors;
};

Point load(int port, int clients, double seconds, const BodyFn& body) {
  std::vector<std::vector<double>> lat(clients);
  std::atomic<int> errors{0};
  std::atomic<bool> go{true};
  std::vector<std::thread> ts;
  const auto t0 = Clock::now();
  for (int c = 0; c < clients; ++c)
    ts.emplace_back([&, c] {
      httplib::Client cli("127.0.0.1", port);
      cli.set_keep_alive(true);
      cli.set_tcp_nodelay(true);
      cli.set_read_timeout(120, 0);
      for (int i = 0; go; ++i) {
        const auto t = Clock::now();
        auto r = cli.Post("/v1/chat/completions", body(c * 1000 + i), "application/json");
        if (!r || r->status != 200)
          ++errors;
        else
          lat[c].push_back(since(t));
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  go = false;
  for (auto& t : ts) t.join();
  const double wall = since(t0);
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(all.size()) / wall, percentile(all, 0.5), percentile(all, 0.99), errors.load()};
}

// requests/s and latency at 1/4/16/64 keep-alive clients, max_batch 1 then 16; returns the ratio at 16.
double load_table(const std::string& dir, const BodyFn& body, double seconds) {
  std::printf("| max_batch | clients | req/s | p50 s | p99 s | p99/p50 | mean rows/step | errors |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::vector<double> rps_at16;
  for (int max_batch : {1, 16}) {
    auto responder = std::make_shared<LocalModelResponder>(load_checkpoint(dir), "m", max_batch);
    ServerOptions o;
    o.port = 0;
    o.http_threads = 64;
    o.log = [](const std::string&) {};
    ModelServer server(responder, o);
    server.start();
    load(server.port(), 2, 1.0, body);  // warm-up
    for (int clients : {1, 4, 16, 64}) {
      const auto before = responder->batch_stats();
      const Point p = load(server.port(), clients, seconds, body);
      const auto after = responder->batch_stats();
      const double rows = after.steps > before.steps
                              ? static_cast<double>(after.row_steps - before.row_steps) /
                                    static_cast<double>(after.steps - before.steps)
                              : 0;
      std::printf("| %d | %d | %.1f | %.3f | %.3f | %.1f | %.1f | %d |\n", max_batch, clients, p.rps, p.p50,
                  p.p99, p.p50 > 0 ? p.p99 / p.p50 : 0, rows, p.errors);
      std::fflush(stdout);
      if (clients == 16) rps_at16.push_back(p.rps);
    }
    server.stop();
  }
  return rps_at16.size() == 2 ? rps_at16[1] / rps_at16[0] : 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);  // the client side: the server closes after refusing a body mid-upload
  const double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  configure_threads(threads);
  const std::string dir = write_model();
  const std::string chain_model = argc > 3 ? argv[3] : "models/cloud-chain";
  std::printf("bench_serve: %d compute thread(s), %.0f s per point\n\n", threads, seconds);
  double ratio_chain = 0, ratio_random = 0;
  if (fs::exists(chain_model + "/config.json")) {
    std::printf("### models/cloud-chain (d=128, 3 layers), chain questions, greedy, max_tokens 256\n\n");
    ratio_chain = load_table(chain_model, chain_body(), seconds);
  } else {
    std::printf("(%s not found: the chain table is skipped)\n", chain_model.c_str());
  }
  std::printf("\n### random char model (d=256, 4 layers), 32 new tokens, greedy\n\n");
  ratio_random = load_table(dir, random_model_body(), seconds);
  std::printf(
      "\nrequests/s at 16 clients, continuous batching vs one at a time: %.2fx (cloud-chain), %.2fx "
      "(d=256)\n",
      ratio_chain, ratio_random);

  // Hostile clients against the batched server.
  auto responder = std::make_shared<LocalModelResponder>(load_checkpoint(dir), "m", 16);
  ServerOptions o;
  o.port = 0;
  o.log = [](const std::string&) {};
  ModelServer server(responder, o);
  server.start();
  std::atomic<bool> drip{true};
  std::vector<std::thread> drips;
  for (int i = 0; i < 20; ++i)
    drips.emplace_back([&] {
      httplib::Client c("127.0.0.1", server.port());
      c.set_read_timeout(30, 0);
      // A body that arrives one line every 2 s (the slow client), chunked so it never ends early.
      c.Post(
          "/v1/chat/completions",
          [&](size_t, httplib::DataSink& sink) {
            for (int k = 0; drip && k < 20; ++k) {
              sink.write("  \n", 3);
              std::this_thread::sleep_for(std::chrono::milliseconds(200));
            }
            sink.done();
            return true;
          },
          "application/json");
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  httplib::Client probe("127.0.0.1", server.port());
  double worst = 0;
  for (int i = 0; i < 20; ++i) {
    const auto t = Clock::now();
    auto r = probe.Get("/health");
    worst = std::max(worst, since(t));
    if (!r || r->status != 200) std::printf("health probe %d failed\n", i);
  }
  const auto t = Clock::now();
  auto answered = probe.Post("/v1/chat/completions", random_model_body()(1), "application/json");
  const double chat_s = since(t);
  drip = false;
  for (auto& d : drips) d.join();
  std::printf(
      "\n20 slow bodies open: /health worst of 20 probes %.1f ms; a chat request %.3f s (status %d)\n",
      worst * 1000, chat_s, answered ? answered->status : -1);

  const long rss0 = peak_rss_mb();
  httplib::Client big("127.0.0.1", server.port());
  const std::string mb(1 << 20, ' ');
  auto r413 = big.Post(
      "/v1/chat/completions",
      [&](size_t, httplib::DataSink& sink) {
        for (int k = 0; k < 50; ++k)
          if (!sink.write(mb.data(), mb.size())) break;
        sink.done();
        return true;
      },
      "application/json");
  std::printf("50 MB chunked body: status %d, peak RSS %ld → %ld MB\n", r413 ? r413->status : -1, rss0,
              peak_rss_mb());
  auto r415 = big.Post("/v1/chat/completions", {{"Content-Encoding", "gzip"}}, mb, "application/json");
  std::printf("gzip body: status %d, peak RSS %ld MB\n", r415 ? r415->status : -1, peak_rss_mb());
  server.stop();
  return 0;
}
