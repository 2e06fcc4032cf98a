#include "rl/policy_loss.h"

#include <algorithm>

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include "model/logprobs.h"

namespace handoff {

at::Tensor old_logprobs_tensor(const PolicyBatch& batch, const c10::Device& device) {
  const int64_t B = static_cast<int64_t>(batch.advantages.size());
  int64_t T = 0;
  for (const auto& c : batch.completions) T = std::max<int64_t>(T, c.size());
  std::vector<float> flat(B * T, 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (size_t t = 0; t < batch.old_logprobs[b].size(); ++t) flat[b * T + t] = batch.old_logprobs[b][t];
  return torch::from_blob(flat.data(), {B, T}, at::kFloat).clone().to(device);
}

at::Tensor policy_loss(CausalLM& model, const PolicyBatch& batch, const PolicyLossOptions& o,
                       const at::Tensor& old_lp, const at::Tensor& ref_lp) {
  const double norm = 1.0 / static_cast<double>(batch.kept_prompts);
  auto adv = torch::tensor(batch.advantages).to(model->device()).unsqueeze(1);
  auto lp = completion_logprobs(model, batch.prompts, batch.completions);
  at::Tensor per_token;
  if (!o.clipped) {
    per_token = lp.token_logprobs * adv;
  } else {
    auto ratio = at::exp(lp.token_logprobs - old_lp.narrow(1, 0, lp.token_logprobs.size(1))) * lp.mask;
    per_token = at::min(ratio * adv, at::clamp(ratio, 1 - o.clip_eps, 1 + o.clip_eps) * adv) * lp.mask;
  }
  auto loss = -per_token.sum() * norm;
  if (o.kl_coef > 0) {  // k3 estimator of KL(π_θ ‖ π_ref), per token
    auto d = (ref_lp - lp.token_logprobs) * lp.mask;
    loss = loss + o.kl_coef * ((at::exp(d) - d - 1) * lp.mask).sum() / lp.mask.sum();
  }
  return loss;
}

double policy_update(CausalLM& model, torch::optim::Optimizer& opt, const PolicyBatch& batch,
                     const RlOptions& o, CausalLM* reference) {
  if (batch.empty()) return 0;
  const at::Tensor old_lp = old_logprobs_tensor(batch, model->device());
  at::Tensor ref_lp;
  if (o.kl_coef > 0) {
    torch::NoGradGuard ng;
    ref_lp = completion_logprobs(*reference, batch.prompts, batch.completions).token_logprobs;
  }
  const PolicyLossOptions lo{o.ppo_epochs > 1, o.clip_eps, o.kl_coef};
  double loss_value = 0;
  for (int64_t epoch = 0; epoch < o.ppo_epochs; ++epoch) {
    auto loss = policy_loss(model, batch, lo, old_lp, ref_lp);
    opt.zero_grad();
    loss.backward();
    if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    opt.step();
    loss_value = loss.item<double>();
  }
  return loss_value;
}

}  // namespace handoff
