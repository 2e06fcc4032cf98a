// Sampling throughput: batched generation with the KV cache vs recomputing the whole prefix every token,
// same model, prompts and seeds, measured in one run. Usage: bench_sampling [threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model/sampler.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

double tokens_per_s(CausalLM& m, const std::vector<std::vector<int>>& prompts, SamplingOptions o, int reps) {
  std::vector<uint64_t> seeds(prompts.size());
  for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = i;
  generate(m, prompts, o, seeds);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  for (int r = 0; r < reps; ++r) {
    auto g = generate(m, prompts, o, seeds);
    for (auto& t : g.tokens) tokens += static_cast<int64_t>(t.size());
  }
  return tokens / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 0);
  for (int64_t d : {64, 128}) {
    ModelConfig c;
    c.hidden_size = d;
    c.intermediate_size = d * 11 / 4;
    c.num_hidden_layers = d == 64 ? 2 : 3;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 4;
    c.max_position_embeddings = 256;
    torch::manual_seed(0);
    CausalLM m(c);
    m->eval();
    std::vector<std::vector<int>> prompts(64);
    for (size_t b = 0; b < prompts.size(); ++b)
      for (int t = 0; t < 14; ++t) prompts[b].push_back(4 + (b * 7 + t * 13) % 90);
    SamplingOptions o;
    o.temperature = 1.0;
    o.max_new_tokens = 128;  // no stop tokens: every row generates all 128
    const double cached = tokens_per_s(m, prompts, o, 3);
    o.use_cache = false;
    const double recompute = tokens_per_s(m, prompts, o, 1);
    std::printf(
        "d=%lld L=%lld batch 64, 128 new tokens: KV cache %.0f tok/s, recompute %.0f tok/s, ratio %.1fx\n",
        static_cast<long long>(d), static_cast<long long>(c.num_hidden_layers), cached, recompute,
        cached / recompute);
  }
  return 0;
}
