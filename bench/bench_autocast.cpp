// bf16 autocast (`--precision bf16`) against fp32 on this machine, same model, data and seeds, one run:
// a training step (forward + backward of the next-token loss) and batched KV-cache sampling, for the
// embedded default's device width (d=64) and cloud width (d=128), plus one wider model (d=512) where the
// GEMMs dominate. On a GPU with bf16 tensor cores autocast is the fast path; on a CPU without bf16
// instructions it may only add casts; this benchmark says which case this machine is. Usage: bench_autocast
// [threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "model/sampler.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double train_steps_per_s(CausalLM& m, const at::Tensor& ids, int reps) {
  auto pos = at::arange(ids.size(1) - 1, at::kLong).unsqueeze(0).expand({ids.size(0), ids.size(1) - 1});
  auto step = [&] {
    m->zero_grad();
    auto logits = m->forward(ids.narrow(1, 0, ids.size(1) - 1), pos);
    auto loss = at::cross_entropy_loss(logits.reshape({-1, logits.size(-1)}),
                                       ids.narrow(1, 1, ids.size(1) - 1).reshape({-1}));
    loss.backward();
  };
  step();  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < reps; ++r) step();
  return reps / seconds_since(t0);
}

double sample_tokens_per_s(CausalLM& m, int reps) {
  std::vector<std::vector<int>> prompts(64);
  for (size_t b = 0; b < prompts.size(); ++b)
    for (int t = 0; t < 14; ++t) prompts[b].push_back(4 + (b * 7 + t * 13) % 90);
  std::vector<uint64_t> seeds(prompts.size());
  for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = i;
  SamplingOptions o;
  o.temperature = 1.0;
  o.max_new_tokens = 64;
  generate(m, prompts, o, seeds);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens = 0;
  for (int r = 0; r < reps; ++r)
    for (auto& t : generate(m, prompts, o, seeds).tokens) tokens += static_cast<int64_t>(t.size());
  return tokens / seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 0);
  std::printf("%-22s %14s %14s %8s %16s %16s %8s\n", "model", "fp32 steps/s", "bf16 steps/s", "ratio",
              "fp32 sample t/s", "bf16 sample t/s", "ratio");
  for (int64_t d : {64, 128, 512}) {
    ModelConfig c;
    c.hidden_size = d;
    c.intermediate_size = d * 11 / 4;
    c.num_hidden_layers = d == 64 ? 2 : (d == 128 ? 3 : 4);
    c.num_attention_heads = d == 512 ? 8 : 4;
    c.num_key_value_heads = c.num_attention_heads;
    c.max_position_embeddings = 160;
    torch::manual_seed(0);
    CausalLM m(c);
    auto ids = torch::randint(4, 100, {64, 97}, at::kLong);
    const int reps = d == 512 ? 3 : 10;
    double train[2], sample[2];
    for (int bf16 = 0; bf16 < 2; ++bf16) {
      m->autocast_bf16 = bf16 == 1;
      m->train();
      train[bf16] = train_steps_per_s(m, ids, reps);
      m->eval();
      torch::NoGradGuard ng;
      sample[bf16] = sample_tokens_per_s(m, d == 512 ? 1 : 3);
    }
    char name[64];
    std::snprintf(name, sizeof name, "d=%lld L=%lld batch 64", static_cast<long long>(d),
                  static_cast<long long>(c.num_hidden_layers));
    std::printf("%-22s %14.2f %14.2f %7.2fx %16.0f %16.0f %7.2fx\n", name, train[0], train[1],
                train[1] / train[0], sample[0], sample[1], sample[1] / sample[0]);
  }
  return 0;
}
