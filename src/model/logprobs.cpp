#include "model/logprobs.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "model/autocast.h"

namespace handoff {

CompletionLogprobs completion_logprobs(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                                       const std::vector<std::vector<int>>& completions) {
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
  // --precision bf16: the training forward runs under the same autocast as sampling (model/autocast.h);
  // the logits are cast back to fp32 before the log-softmax.
  std::optional<Bf16Autocast> autocast;
  if (model->autocast_bf16 && model->lm_weight().scalar_type() == at::kFloat) autocast.emplace(dev);
  auto h = model->hidden(input, positions);  // [B, L, D]
  auto hs = h.gather(1, idx.unsqueeze(-1).expand({B, Tc, h.size(2)}));
  auto logits = at::matmul(hs, model->lm_weight().t()).to(at::kFloat);
  auto lp = at::log_softmax(logits, -1).gather(2, tgt.unsqueeze(-1)).squeeze(-1);
  return {lp * m, m};
}

}  // namespace handoff
