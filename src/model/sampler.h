#pragma once
// Batched generation with the KV cache: a whole group (G samples × prompts) decodes in one forward per token.
#include <cstdint>
#include <vector>

#include "model/decoder.h"

namespace handoff {

struct SamplingOptions {
  double temperature = 1.0;  // 0 → greedy (deterministic)
  double top_p = 1.0;        // nucleus sampling mass, in (0, 1]
  int64_t max_new_tokens = 64;
  std::vector<int> stop_ids;  // a row ends after emitting one of these (the stop token is kept in its output)
  bool use_cache = true;      // false: recompute the whole prefix every token (benchmarks and tests only)
  // Rows with the same prompt share one pass over it (sampler.cpp, prefill); false: each row runs its own
  // (the reference of the test that the two agree, and of benchmarks).
  bool share_prompt_pass = true;
  // Deployment knob: `boost_token` is emitted exactly where the model gives it probability ≥ boost_threshold
  // (at temperature 1) and never elsewhere — a decision rule on the model's own P(<handoff>) that moves a
  // hand-off model's call rate both ways at serving time (low threshold: more calls; high: fewer). Off when
  // boost_token < 0 (plain sampling, where the token competes like any other).
  int boost_token = -1;
  double boost_threshold = 1.1;
  // Tokens never emitted (their logits are masked before picking). Collaborative inference uses it to get the
  // device's own answer when the cloud fails after a hand-off (the --fallback path).
  std::vector<int> banned_ids;
};

struct Generation {
  std::vector<std::vector<int>> tokens;  // generated tokens per row
  std::vector<std::vector<float>>
      logprobs;               // log π(token) under the model (temperature 1), per generated token
  std::vector<bool> stopped;  // ended on a stop token (false: length limit)
  // With the boost knob on: per row, the highest P(boost_token) (temperature 1) at any step it decoded —
  // for a hand-off, up to and including the step it was emitted; for a kept row, over its whole reply. The
  // budget guard's score (collab/pure/budget_guard.h). Empty when the knob is off.
  std::vector<float> boost_peak;
};

// Each row has its own seed, so row i's sample does not depend on which other rows share the batch.
Generation generate(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                    const SamplingOptions& opts, const std::vector<uint64_t>& seeds);

}  // namespace handoff
