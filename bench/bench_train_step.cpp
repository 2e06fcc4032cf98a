// Training-step efficiency: achieved FLOP/s of one SFT step (forward + backward + AdamW) divided by the GEMM
// peak measured in the same run. FLOPs per step ≈ 6·(non-embedding params + LM head)·tokens + attention
// (12·L·T·d per token for QKᵀ and PV, forward and backward). Usage: bench_train_step [threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "model/decoder.h"
#include "model/logprobs.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

double step_flops(const ModelConfig& c, int64_t batch, int64_t seq) {
  const double matrices = static_cast<double>(c.num_parameters() - c.vocab_size * c.hidden_size) +
                          static_cast<double>(c.vocab_size * c.hidden_size);  // LM head counts as a matmul
  const double tokens = static_cast<double>(batch * seq);
  const double attention = 12.0 * c.num_hidden_layers * seq * c.hidden_size * tokens / 2.0;  // causal half
  return 6.0 * matrices * tokens + attention;
}

void run(const char* name, ModelConfig c, int64_t batch, int64_t prompt, int64_t completion, double peak) {
  torch::manual_seed(0);
  CausalLM m(c);
  m->train();
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(1e-3));
  std::vector<std::vector<int>> prompts(batch), completions(batch);
  std::mt19937 rng(1);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < prompt; ++t) prompts[b].push_back(4 + rng() % 90);
    for (int64_t t = 0; t < completion; ++t) completions[b].push_back(4 + rng() % 90);
  }
  auto step = [&] {
    auto lp = completion_logprobs(m, prompts, completions, PromptPass::kPerRow);
    auto loss = -(lp.token_logprobs.sum() / lp.mask.sum());
    opt.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(m->parameters(), 1.0);
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  int steps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double secs = 0;
  while (secs < 3.0) {
    step();
    ++steps;
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double per_s = steps / secs;
  const double gflops = step_flops(c, batch, prompt + completion) * per_s / 1e9;
  std::printf(
      "%-28s params %8lld  batch %3lld seq %3lld  %7.2f steps/s  %9.0f tok/s  %6.1f GFLOP/s  = %.2f of "
      "peak\n",
      name, static_cast<long long>(c.num_parameters()), static_cast<long long>(batch),
      static_cast<long long>(prompt + completion), per_s, per_s * batch * (prompt + completion), gflops,
      gflops / peak);
}

ModelConfig shape(int64_t d, int64_t layers, int64_t heads) {
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden_size = d;
  c.intermediate_size = (d * 8 / 3 + 15) / 16 * 16;
  c.num_hidden_layers = layers;
  c.num_attention_heads = heads;
  c.num_key_value_heads = heads;
  c.max_position_embeddings = 256;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 0);
  std::printf("BLAS %s; %s\n", blas_library().c_str(), blas_threads_summary().c_str());
  const double peak = gemm_gflops(1024, 2.0);
  std::printf("GEMM peak (1024^2 fp32, same run): %.1f GFLOP/s\n", peak);
  run("device d=64 L=2 (quick)", shape(64, 2, 4), 64, 14, 34, peak);
  if (std::getenv("BENCH_ONLY_DEVICE")) return 0;
  run("cloud d=128 L=3 (quick)", shape(128, 3, 4), 64, 14, 34, peak);
  run("d=256 L=4", shape(256, 4, 4), 64, 14, 34, peak);
  run("d=512 L=4", shape(512, 4, 8), 32, 14, 34, peak);
  return 0;
}
