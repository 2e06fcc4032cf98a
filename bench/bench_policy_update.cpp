// The RL policy update with and without length micro-batches (rl/policy_loss.h length_microbatches), in one
// run, alternating: steps/s of each, their ratio, the share of computed tokens that are padding, and the
// largest weight difference after one identical step (the micro-batches change only the summation order).
// Rows mimic a GAPG step of the quick preset: 256 rows (32 prompts × G = 8) whose prompt and completion
// lengths grow with an 1–8 difficulty, completions cut short at random (hand-offs, early answers).
// Usage: bench_policy_update [threads] [update_tokens]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <torch/optim/adamw.h>

#include "model/decoder.h"
#include "rl/policy_loss.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

PolicyBatch gapg_like_batch(int64_t rows) {
  std::mt19937 rng(7);
  PolicyBatch b;
  for (int64_t i = 0; i < rows; ++i) {
    const int d = 1 + static_cast<int>(rng() % 8);
    const int prompt = 6 + 3 * d, full = std::min(64, 8 + 6 * d);
    const int completion = 5 + static_cast<int>(rng() % static_cast<unsigned>(full - 4));
    std::vector<int> p, c;
    for (int t = 0; t < prompt; ++t) p.push_back(4 + static_cast<int>(rng() % 90));
    for (int t = 0; t < completion; ++t) c.push_back(4 + static_cast<int>(rng() % 90));
    b.prompts.push_back(p);
    b.completions.push_back(c);
    b.advantages.push_back(static_cast<float>(static_cast<int>(rng() % 200) - 100) / 100.0f);
    b.old_logprobs.push_back(std::vector<float>(c.size(), -1.0f));
  }
  b.kept_prompts = rows / 8;
  return b;
}

ModelConfig device_config() {
  ModelConfig c;  // models/device-chain's shape
  c.vocab_size = 100;
  c.hidden_size = 64;
  c.intermediate_size = 176;
  c.num_hidden_layers = 2;
  c.num_attention_heads = c.num_key_value_heads = 4;
  c.max_position_embeddings = 160;
  return c;
}

double seconds_per_update(CausalLM& m, const PolicyBatch& b, const RlOptions& o, int reps) {
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-6));
  policy_update(m, opt, b, o, nullptr);  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) policy_update(m, opt, b, o, nullptr);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 0);
  const int64_t budget = argc > 2 ? std::atoll(argv[2]) : 2048;
  const PolicyBatch batch = gapg_like_batch(256);
  int64_t real = 0, longest = 0, micro = 0;
  for (size_t i = 0; i < batch.prompts.size(); ++i) {
    const auto len = static_cast<int64_t>(batch.prompts[i].size() + batch.completions[i].size());
    real += len;
    longest = std::max(longest, len);
  }
  const auto parts = length_microbatches(batch, budget);
  for (const auto& p : parts) {
    int64_t l = 0;
    for (size_t i = 0; i < p.prompts.size(); ++i)
      l = std::max<int64_t>(l, static_cast<int64_t>(p.prompts[i].size() + p.completions[i].size()));
    micro += l * static_cast<int64_t>(p.prompts.size());
  }
  const int64_t padded = longest * static_cast<int64_t>(batch.prompts.size());
  std::printf(
      "%s; 256 rows, %lld real tokens: one batch computes %lld (%.0f %% padding), %zu micro-batches of "
      "<= %lld compute %lld (%.0f %% padding)\n",
      blas_threads_summary().c_str(), static_cast<long long>(real), static_cast<long long>(padded),
      100.0 * (padded - real) / padded, parts.size(), static_cast<long long>(budget),
      static_cast<long long>(micro), 100.0 * (micro - real) / micro);
  torch::manual_seed(0);
  CausalLM whole(device_config()), split(device_config());
  {
    torch::NoGradGuard ng;
    auto a = whole->parameters(), b = split->parameters();
    for (size_t i = 0; i < a.size(); ++i) b[i].copy_(a[i]);
  }
  whole->train();
  split->train();
  RlOptions one, many;
  many.update_tokens = budget;
  std::vector<double> t_one, t_many;
  for (int round = 0; round < 5; ++round) {  // alternated rounds, medians
    t_one.push_back(seconds_per_update(whole, batch, one, 3));
    t_many.push_back(seconds_per_update(split, batch, many, 3));
  }
  std::sort(t_one.begin(), t_one.end());
  std::sort(t_many.begin(), t_many.end());
  double diff = 0;
  auto a = whole->parameters(), b = split->parameters();
  for (size_t i = 0; i < a.size(); ++i) diff = std::max(diff, (a[i] - b[i]).abs().max().item<double>());
  std::printf(
      "one batch %.1f ms, micro-batches %.1f ms per update (medians of 5 rounds): %.2fx; after %d "
      "identical updates the weights differ by at most %.2g\n",
      1e3 * t_one[2], 1e3 * t_many[2], t_one[2] / t_many[2], 5 * 4, diff);
  return 0;
}
