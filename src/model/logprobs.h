#pragma once
// Log-probabilities of given completions after given prompts: one batched forward over right-padded
// [prompt | completion] sequences, or a pass over the distinct prompts and one over the completions. Used by
// SFT (cross-entropy) and by the policy gradient (log π_θ(y|x)).
#include <vector>

#include "model/decoder.h"

namespace handoff {

struct CompletionLogprobs {
  at::Tensor token_logprobs;  // [B, Tc] log π(y_t | x, y_<t); 0 where mask is 0. Carries grad in grad mode.
  at::Tensor mask;            // [B, Tc] float, 1 on real completion tokens
};

// Rows with the same prompt (a GAPG group's G samples, paper §3.3) share one pass over it when share_prompts:
// the distinct prompts run once, their keys and values are read by each of their rows' completions (the
// gradient of every row flows back into the shared pass), 1/G of the prompt's work. The same values as one
// sequence per row to float rounding (ModelTest.SharedPromptLogprobsMatchOneSequencePerRow).
CompletionLogprobs completion_logprobs(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const std::vector<std::vector<int>>& completions,
                                       bool share_prompts = true);

}  // namespace handoff
