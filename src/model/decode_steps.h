#pragma once
// The pieces of one decoding step that generate() (one batch, start to end) and SlotDecoder (rows that join
// and leave between steps) share: request checks, left-padded prompt batches, and the pick of the next token.
#include <ATen/Tensor.h>

#include <cstdint>
#include <random>
#include <vector>

#include "model/config.h"
#include "model/sampler.h"

namespace handoff {

// Throws Error on sampling options the model cannot honour (top_p, temperature, banned ids).
void check_sampling(const ModelConfig& cfg, const SamplingOptions& opts);

// The longest prompt; every prompt must be non-empty and leave room for at least one new token.
int64_t longest_prompt(const ModelConfig& cfg, const std::vector<std::vector<int>>& prompts);

// Prompts left-padded to the longest (P columns) so every row's next token lands in the same column;
// positions count real tokens only.
struct PaddedPrompts {
  int64_t P = 0;
  at::Tensor input;           // [B, P] token ids (padding: pad id or 0)
  at::Tensor positions;       // [B, P]
  at::Tensor key_valid;       // [B, P + extra_cols]: false on padding
  at::Tensor next_positions;  // [B]: each row's prompt length
};
// Which rows share a prompt (RL's G samples of each): `prompts` are the distinct ones in order of first use,
// and first[b] is the index among them of row b's prompt.
struct DistinctPrompts {
  std::vector<std::vector<int>> prompts;
  std::vector<int64_t> first;
};
DistinctPrompts distinct_prompts(const std::vector<std::vector<int>>& prompts);
// `first` as an owned [B] index tensor on `dev`: rows of a shared pass's outputs gathered per row.
at::Tensor row_index(const DistinctPrompts& d, const at::Device& dev);

PaddedPrompts left_pad(const std::vector<std::vector<int>>& prompts, const ModelConfig& cfg,
                       int64_t extra_cols, const at::Device& dev);

// The next token of every row from logits [B, V], by the options' rule (greedy, temperature/top_p sampling,
// banned ids, the hand-off boost). Row b's one uniform draw per step (none when greedy) comes from *rngs[b],
// so a row's sample depends only on its own generator, not on its batch-mates. With the boost on and
// `boost_p` given, *boost_p is set to P(boost_token) per row ([B] float).
at::Tensor pick_next(const at::Tensor& logits, const SamplingOptions& opts,
                     const std::vector<std::mt19937_64*>& rngs, at::Tensor* boost_p = nullptr);

// log π(next) under the unmasked model at temperature 1: [B] float.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& next);

// pick_next and token_logprobs in one pass per row for the sampler's common case — fp32 logits on the CPU,
// no top-p, no banned or boosted token — where their dozen ATen ops a step were a tenth of a rollout's time
// (issue 18). The same rule and draws: greedy takes the first largest logit; sampling takes the first token
// whose running sum of e^(x/T − max) reaches u times their total (the exponentials as the attention kernel
// takes them, model/one_token_attention.h; the sums in double), so a token differs from pick_next's only
// where u falls within float rounding of a boundary.
bool pick_in_one_pass_applies(const at::Tensor& logits, const SamplingOptions& opts);
void pick_in_one_pass(const at::Tensor& logits, const SamplingOptions& opts,
                      const std::vector<std::mt19937_64*>& rngs, std::vector<int64_t>& next,
                      std::vector<float>& logprob);

}  // namespace handoff
