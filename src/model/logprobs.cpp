#include "model/logprobs.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "model/autocast.h"
#include "model/decode_steps.h"

namespace handoff {

namespace {

// The completions as a right-padded batch [B, Tc]: ids (0 on padding), their positions after each prompt, the
// mask of real tokens.
struct CompletionBatch {
  at::Tensor ids, positions, targets, mask;
};
CompletionBatch completion_batch(const std::vector<int64_t>& prompt_lengths,
                                 const std::vector<std::vector<int>>& completions, int64_t Tc,
                                 const c10::Device& dev) {
  const int64_t B = static_cast<int64_t>(prompt_lengths.size());
  std::vector<int64_t> ids(B * Tc, 0), pos(B * Tc, 0);
  std::vector<float> mask(B * Tc, 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t np = prompt_lengths[b];
    for (int64_t t = 0; t < Tc; ++t) {
      pos[b * Tc + t] = np + t;
      if (t < static_cast<int64_t>(completions[b].size())) {
        ids[b * Tc + t] = completions[b][t];
        mask[b * Tc + t] = 1.0f;
      }
    }
  }
  auto lopt = at::TensorOptions().dtype(at::kLong);
  auto input = torch::from_blob(ids.data(), {B, Tc}, lopt).clone().to(dev);
  return {input, torch::from_blob(pos.data(), {B, Tc}, lopt).clone().to(dev), input,
          torch::from_blob(mask.data(), {B, Tc}, at::TensorOptions().dtype(at::kFloat)).clone().to(dev)};
}

}  // namespace

// The distinct prompts left-padded to P through the model, filling a cache (logprobs.h).
PromptStates prompt_states(CausalLM& model, const std::vector<std::vector<int>>& distinct) {
  const PaddedPrompts up = left_pad(distinct, model->config, 0, model->device());
  KVCache shared = model->make_cache(static_cast<int64_t>(distinct.size()), up.P);
  PromptStates st;
  st.last = model->hidden(up.input, up.positions, up.key_valid, &shared).select(1, up.P - 1);
  st.k = std::move(shared.k);
  st.v = std::move(shared.v);
  st.key_valid = up.key_valid;
  st.P = up.P;
  for (const auto& p : distinct) st.lengths.push_back(static_cast<int64_t>(p.size()));
  return st;
}

// Each row's cache is its prompt's columns followed by room for its completion, which then runs with
// positions continuing its prompt. The state that predicts completion token 0 is the prompt's last; token
// j's, the completion's j − 1.
CompletionLogprobs completion_logprobs_after(CausalLM& model, const PromptStates& st,
                                             const std::vector<int64_t>& row_of,
                                             const std::vector<std::vector<int>>& completions) {
  const int64_t B = static_cast<int64_t>(completions.size()), P = st.P;
  if (static_cast<int64_t>(row_of.size()) != B)
    throw Error("completion_logprobs_after: one prompt index per completion is required");
  int64_t Tc = 1;
  for (const auto& c : completions) Tc = std::max<int64_t>(Tc, c.size());
  const auto dev = model->device();
  const auto rows =
      at::from_blob(const_cast<int64_t*>(row_of.data()), {B}, at::TensorOptions().dtype(at::kLong))
          .clone()
          .to(dev);
  KVCache own;
  own.capacity = P + Tc;
  own.length = P;
  for (size_t l = 0; l < st.k.size(); ++l) {
    auto room = at::zeros({B, st.k[l].size(1), Tc, st.k[l].size(3)}, st.k[l].options());
    own.k.push_back(at::cat({st.k[l].index_select(0, rows), room}, 2));
    own.v.push_back(at::cat({st.v[l].index_select(0, rows), room}, 2));
  }
  std::vector<int64_t> lengths;
  for (int64_t r : row_of) {
    if (r < 0 || r >= static_cast<int64_t>(st.lengths.size()))
      throw Error("completion_logprobs_after: a prompt index is out of range");
    lengths.push_back(st.lengths[static_cast<size_t>(r)]);
  }
  const CompletionBatch c = completion_batch(lengths, completions, Tc, dev);
  auto key_valid =
      at::cat({st.key_valid.index_select(0, rows), at::ones({B, Tc}, st.key_valid.options())}, 1);
  auto h = model->hidden(c.ids, c.positions, key_valid, &own);  // [B, Tc, D]
  auto hs = at::cat({st.last.index_select(0, rows).unsqueeze(1), h.narrow(1, 0, Tc - 1)}, 1);
  auto logits = at::matmul(hs, model->lm_weight().t()).to(at::kFloat);
  auto lp = at::log_softmax(logits, -1).gather(2, c.targets.unsqueeze(-1)).squeeze(-1);
  return {lp * c.mask, c.mask};
}

namespace {

// The shared-prompt form (logprobs.h): prompt_states over the distinct prompts, then every row's completion.
CompletionLogprobs shared_prompt_logprobs(CausalLM& model, const DistinctPrompts& d,
                                          const std::vector<std::vector<int>>& completions) {
  return completion_logprobs_after(model, prompt_states(model, d.prompts), d.first, completions);
}

}  // namespace

CompletionLogprobs completion_logprobs(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const std::vector<std::vector<int>>& completions, PromptPass pass) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (completions.size() != prompts.size())
    throw Error("completion_logprobs: prompts and completions differ in count");
  int64_t L = 1, Tc = 1;
  for (int64_t b = 0; b < B; ++b) {
    if (prompts[b].empty()) throw Error("completion_logprobs: empty prompt");
    L = std::max<int64_t>(L, prompts[b].size() + completions[b].size());
    Tc = std::max<int64_t>(Tc, completions[b].size());
  }
  const auto& cfg = model->config;
  if (L > cfg.max_position_embeddings)
    throw Error("sequence of " + std::to_string(L) + " tokens exceeds the context of " +
                std::to_string(cfg.max_position_embeddings));
  // --precision bf16: the training forward runs under the same autocast as sampling (model/autocast.h);
  // the logits are cast back to fp32 before the log-softmax.
  std::optional<Bf16Autocast> autocast;
  if (model->autocast_bf16 && model->lm_weight().scalar_type() == at::kFloat)
    autocast.emplace(model->device());
  if (pass == PromptPass::kShared) {
    const DistinctPrompts d = distinct_prompts(prompts);
    if (static_cast<int64_t>(d.prompts.size()) < B) return shared_prompt_logprobs(model, d, completions);
  }
  std::vector<int64_t> ids(B * L, 0), gather_at(B * Tc, 0), targets(B * Tc, 0);
  std::vector<float> mask(B * Tc, 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    const auto& p = prompts[b];
    const auto& c = completions[b];
    const int64_t np = static_cast<int64_t>(p.size());
    for (int64_t t = 0; t < np; ++t) ids[b * L + t] = p[t];
    for (size_t t = 0; t < c.size(); ++t) ids[b * L + np + t] = c[t];
    for (int64_t j = 0; j < Tc; ++j) {
      // The logit at position np-1+j predicts completion token j.
      gather_at[b * Tc + j] = std::min<int64_t>(np - 1 + j, L - 1);
      if (j < static_cast<int64_t>(c.size())) {
        targets[b * Tc + j] = c[j];
        mask[b * Tc + j] = 1.0f;
      }
    }
  }
  const auto dev = model->device();
  auto lopt = at::TensorOptions().dtype(at::kLong);
  auto input = torch::from_blob(ids.data(), {B, L}, lopt).clone().to(dev);
  auto positions = at::arange(L, lopt.device(dev)).unsqueeze(0).expand({B, L});
  auto idx = torch::from_blob(gather_at.data(), {B, Tc}, lopt).clone().to(dev);
  auto tgt = torch::from_blob(targets.data(), {B, Tc}, lopt).clone().to(dev);
  auto m = torch::from_blob(mask.data(), {B, Tc}, at::TensorOptions().dtype(at::kFloat)).clone().to(dev);

  // Right padding needs no key mask: padding comes after every real token, so causality hides it.
  auto h = model->hidden(input, positions);  // [B, L, D]
  auto hs = h.gather(1, idx.unsqueeze(-1).expand({B, Tc, h.size(2)}));
  auto logits = at::matmul(hs, model->lm_weight().t()).to(at::kFloat);
  auto lp = at::log_softmax(logits, -1).gather(2, tgt.unsqueeze(-1)).squeeze(-1);
  return {lp * m, m};
}

}  // namespace handoff
