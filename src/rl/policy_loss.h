#pragma once
// The policy-gradient loss of GAPG and the baselines (paper §3.3), and one optimiser update with it.
//
//   L(θ) = −(1/|kept|) Σ_i A_i Σ_t log π_θ(y_i,t | x_i, y_i,<t)
//
// over the device's own tokens only (the cloud's tokens are never part of y_θ), normalised by the number of
// kept prompts |kept| — not by tokens or rows — so that ∇L = −(1/|kept|) Σ_i A_i ∇log π_θ(y_i), the group-
// level estimator of §3.3. Options: with ppo_epochs > 1 each per-token term is PPO's clipped ratio to the
// sampling policy (at the first epoch the ratio is 1 and the gradient is the estimator's); with kl_coef > 0 a
// k3 estimate of KL(π_θ ‖ π_ref) per token is added.
#include <ATen/Tensor.h>

#include "model/decoder.h"
#include "model/logprobs.h"
#include "rl/rl_step.h"

namespace torch::optim {
class Optimizer;
}

namespace handoff {

struct PolicyLossOptions {
  bool clipped = false;  // PPO's clipped ratio to old_logprobs instead of A · log π
  double clip_eps = 0.2;
  double kl_coef = 0.0;  // > 0: needs ref_logprobs
  // > 0: the KL term's token count (the whole batch's, when `batch` is one micro-batch of it); else the
  // batch's own.
  double kl_tokens = 0.0;
};

// The rows of `batch` in order of length (prompt + completion), cut into micro-batches of at most
// `max_tokens` padded tokens each (at least one row each), every one keeping the whole batch's normaliser
// |kept|: the micro-batches' losses add up to the batch's loss. Why: padded to its longest row, a GAPG update
// computes ~2× the real tokens, and its attention temporaries (≈ 60 MB at 256 rows) exceed glibc's largest
// mmap threshold, so they are mapped and zeroed again at every step.
std::vector<PolicyBatch> length_microbatches(const PolicyBatch& batch, int64_t max_tokens);

// The old (sampling) log-probs of `batch`, padded to [B, T_max] with zeros, on `device`.
at::Tensor old_logprobs_tensor(const PolicyBatch& batch, const c10::Device& device);

// The loss above for `batch` under `model`. `old_lp` ([B, T], from old_logprobs_tensor) is read only when
// clipped; `ref_lp` (token log-probs of the reference model, [B, T']) only when kl_coef > 0. With `prompts`,
// row b's prompt is prompts->states[prompts->rows[b]] from a pass made once for several batches
// (model/logprobs.h prompt_states) instead of a pass of this batch's own.
struct PromptsOfRows {
  const PromptStates* states = nullptr;
  std::vector<int64_t> rows;
};
at::Tensor policy_loss(CausalLM& model, const PolicyBatch& batch, const PolicyLossOptions& o,
                       const at::Tensor& old_lp = {}, const at::Tensor& ref_lp = {},
                       const PromptsOfRows* prompts = nullptr);

// ppo_epochs optimiser steps on `batch` (gradient clipping at grad_clip > 0); returns the last loss, 0 for an
// empty batch. The distinct prompts of the rows run once per epoch, however many micro-batches their rows
// fall in: each micro-batch's loss is differentiated with respect to the prompts' states as well (added in
// micro-batch order, with the parameters' gradients), and the prompt pass's backward then runs once.
// `reference` is used when kl_coef > 0. Data-parallel (issue 19): every rank holds the whole batch and
// computes the loss of its share of the rows (dealt in order of length, so the shares pad alike), under the
// whole batch's normalisers; the gradients are summed over the ranks before clipping. `steps_taken`, when
// given, counts the optimiser steps as they happen (an error between two of them leaves the weights
// part-updated).
double policy_update(CausalLM& model, torch::optim::Optimizer& opt, const PolicyBatch& batch,
                     const RlOptions& o, CausalLM* reference, World& world = World::instance(),
                     int* steps_taken = nullptr);

// Share `index` of `shares` of batch's rows: the rows in order of length, every shares-th from index on (so
// the shares pad alike). Normalisers (kept_prompts) are kept.
PolicyBatch dealt_rows(const PolicyBatch& batch, int shares, int index);

// This rank's rows of `batch` (dealt_rows over the world); the whole batch alone.
PolicyBatch rank_rows(const PolicyBatch& batch, const World& world);

}  // namespace handoff
