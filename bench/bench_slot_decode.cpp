// Cost of one continuous-batching step (SlotDecoder::step) against the number of rows decoding, on the
// bench_serve model shape, one thread: the ratio step(rows) / step(1) says how much of a batch is free.
// Usage: bench_slot_decode [threads = 1] [trace.json: a profiler trace of the 16-row steps]
#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model/slot_decoder.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

double median_step_ms(SlotDecoder& d, int rows, int reps) {
  std::vector<std::vector<int>> prompts(rows);
  std::vector<uint64_t> seeds(rows);
  for (int r = 0; r < rows; ++r) {
    for (int t = 0; t < 20; ++t) prompts[r].push_back(4 + (r * 7 + t * 13) % 90);
    seeds[r] = r;
  }
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = reps + 2;
  const auto ids = d.admit(prompts, o, seeds);
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    d.step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  d.reset();
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 1);
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden_size = 256;
  c.intermediate_size = 1024;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 4;
  c.max_position_embeddings = 512;
  torch::manual_seed(3);
  CausalLM m(c);
  m->eval();
  SlotDecoder d(m);
  median_step_ms(d, 16, 8);  // warm-up
  std::printf("| rows | step ms | per row ms | step / 1-row step |\n|---|---|---|---|\n");
  double one = 0;
  for (int rows : {1, 2, 4, 8, 16, 32}) {
    const double ms = median_step_ms(d, rows, 30);
    if (rows == 1) one = ms;
    std::printf("| %d | %.3f | %.3f | %.2f |\n", rows, ms, ms / rows, ms / one);
  }
  if (argc > 2) {
    torch::autograd::profiler::RecordProfile guard(argv[2]);
    median_step_ms(d, 16, 10);
  }
  return 0;
}
