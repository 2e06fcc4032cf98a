#pragma once
// Log-probabilities of given completions after given prompts: one batched forward over right-padded
// [prompt | completion] sequences. Used by SFT (cross-entropy) and by the policy gradient (log π_θ(y|x)).
#include <vector>

#include "model/decoder.h"

namespace handoff {

struct CompletionLogprobs {
  at::Tensor token_logprobs;  // [B, Tc] log π(y_t | x, y_<t); 0 where mask is 0. Carries grad in grad mode.
  at::Tensor mask;            // [B, Tc] float, 1 on real completion tokens
};

CompletionLogprobs completion_logprobs(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const std::vector<std::vector<int>>& completions);

}  // namespace handoff
