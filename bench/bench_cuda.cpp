// CUDA readiness (issue 17; run by scripts/gpu-check.sh on a machine with a CUDA GPU): the same checkpoint on
// CPU and on CUDA — the max |Δ logit| over a batch of prompts (fp32, so ~1e-4 is expected from kernel sums),
// whether greedy decodes agree, and decode tokens/s at batch 1 and 64 on each, measured in one run.
// Usage: bench_cuda CHECKPOINT [threads]. On a CPU-only build it says so and exits non-zero.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <c10/core/InferenceMode.h>

#include "common/error.h"
#include "io/checkpoint.h"
#include "model/sampler.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

std::vector<std::vector<int>> prompts(int64_t batch, int64_t vocab) {
  std::vector<std::vector<int>> p(batch);
  for (int64_t b = 0; b < batch; ++b)
    for (int t = 0; t < 16; ++t) p[b].push_back(static_cast<int>(4 + (b * 7 + t * 13) % (vocab - 4)));
  return p;
}

double tokens_per_s(CausalLM& m, const std::vector<std::vector<int>>& p, int64_t new_tokens) {
  SamplingOptions o;
  o.temperature = 0.0;
  o.max_new_tokens = new_tokens;  // no stop ids: every row generates them all
  std::vector<uint64_t> seeds(p.size(), 0);
  generate(m, p, o, seeds);  // warm-up (CUDA context, allocator)
  const auto t0 = std::chrono::steady_clock::now();
  auto g = generate(m, p, o, seeds);
  int64_t n = 0;
  for (auto& t : g.tokens) n += static_cast<int64_t>(t.size());
  return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) throw Error("usage: bench_cuda CHECKPOINT [threads]");
  configure_threads(argc > 2 ? std::atoi(argv[2]) : 0);
  c10::InferenceMode guard;
  auto cpu = load_checkpoint(argv[1], "cpu");
  auto gpu = load_checkpoint(argv[1], "cuda");  // Error on a CPU-only build
  const int64_t V = cpu.model->config.vocab_size;
  const auto p = prompts(8, V);
  std::vector<int64_t> flat;
  for (const auto& row : p) flat.insert(flat.end(), row.begin(), row.end());
  auto ids = torch::tensor(flat, at::kLong).view({8, 16});
  auto pos = at::arange(16, at::kLong).unsqueeze(0).expand({8, 16}).contiguous();
  auto a = cpu.model->forward(ids, pos);
  auto b = gpu.model->forward(ids.to(gpu.model->device()), pos.to(gpu.model->device())).to(at::kCPU);
  const double diff = (a - b).abs().max().item<double>();
  std::printf("logits CPU vs CUDA: max |diff| %.3g over [8, 16, %lld] (scale: max |logit| %.3g)\n", diff,
              static_cast<long long>(V), a.abs().max().item<double>());
  SamplingOptions greedy;
  greedy.temperature = 0.0;
  greedy.max_new_tokens = 32;
  const std::vector<uint64_t> seeds(p.size(), 0);
  const auto gc = generate(cpu.model, p, greedy, seeds), gg = generate(gpu.model, p, greedy, seeds);
  int same = 0;
  for (size_t i = 0; i < p.size(); ++i) same += gc.tokens[i] == gg.tokens[i];
  std::printf("greedy decodes of 32 tokens equal on %d of %zu prompts\n", same, p.size());
  for (int64_t batch : {1, 64}) {
    const auto q = prompts(batch, V);
    const double c = tokens_per_s(cpu.model, q, 64), g = tokens_per_s(gpu.model, q, 64);
    std::printf("decode batch %lld, 64 new tokens: CPU %.0f tok/s, CUDA %.0f tok/s (%.1fx)\n",
                static_cast<long long>(batch), c, g, g / c);
  }
  return diff < 1e-2 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_cuda: %s\n", e.what());
  return 1;
}
