#pragma once
// Log-probabilities of given completions after given prompts: one batched forward over right-padded
// [prompt | completion] sequences, or a pass over the distinct prompts and one over the completions. Used by
// SFT (cross-entropy) and by the policy gradient (log π_θ(y|x)).
#include <cstdint>
#include <vector>

#include "model/decoder.h"

namespace handoff {

struct CompletionLogprobs {
  at::Tensor token_logprobs;  // [B, Tc] log π(y_t | x, y_<t); 0 where mask is 0. Carries grad in grad mode.
  at::Tensor mask;            // [B, Tc] float, 1 on real completion tokens
};

// How rows meet their prompts. kShared: rows with the same prompt (a GAPG group's G samples, paper §3.3)
// share one pass over it — the distinct prompts run once, their keys and values are read by each of their
// rows' completions (the gradient of every row flows back into the shared pass), 1/G of the prompt's work;
// the same values as kPerRow to float rounding (ModelTest.SharedPromptLogprobsMatchOneSequencePerRow), not
// the same bits. kPerRow: one right-padded sequence per row. No default: the choice changes a run's bytes
// (SFT once took kShared through a default argument, and the reference checkpoints stopped retraining).
enum class PromptPass { kPerRow, kShared };
CompletionLogprobs completion_logprobs(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const std::vector<std::vector<int>>& completions, PromptPass pass);

// The shared-prompt form in two halves, so that one pass over a batch's distinct prompts serves all of its
// micro-batches (the policy update, rl/policy_loss.cpp: a micro-batch's own pass computed again the prompts
// its rows shared with other micro-batches, 8 % of a GAPG update's tokens). The caller opens the bf16
// autocast scope when the model runs under one (completion_logprobs does).
struct PromptStates {
  std::vector<at::Tensor> k, v;  // per layer [D, KV, P, hd]: the prompts' keys and values
  at::Tensor last;               // [D, hidden]: each prompt's last state, which predicts completion token 0
  at::Tensor key_valid;          // [D, P] bool: false on left padding
  int64_t P = 0;
  std::vector<int64_t> lengths;  // [D]: each prompt's tokens
};
PromptStates prompt_states(CausalLM& model, const std::vector<std::vector<int>>& distinct_prompts);
// Row b continues prompt rows[b] of `states` with completions[b].
CompletionLogprobs completion_logprobs_after(CausalLM& model, const PromptStates& states,
                                             const std::vector<int64_t>& rows,
                                             const std::vector<std::vector<int>>& completions);

}  // namespace handoff
