#include "rl/policy_loss.h"

#include <algorithm>
#include <map>
#include <optional>

#include <torch/csrc/autograd/autograd.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/optimizer.h>

#include "model/autocast.h"
#include "model/decode_steps.h"
#include "model/fused_update_scope.h"
#include "model/logprobs.h"
#include "rl/pure/length_buckets.h"
#include "runtime/data_threads.h"

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

namespace {
// [B, T] ones from each row's credit_from on, zeros before; undefined when every row is credited whole.
at::Tensor credit_mask(const PolicyBatch& batch, int64_t T) {
  const auto& from = batch.credit_from;
  if (std::all_of(from.begin(), from.end(), [](int64_t c) { return c == 0; })) return {};
  const int64_t B = static_cast<int64_t>(from.size());
  std::vector<float> flat(B * T, 1.0f);
  for (int64_t b = 0; b < B; ++b) std::fill_n(flat.begin() + b * T, std::min(from[b], T), 0.0f);
  return torch::from_blob(flat.data(), {B, T}, at::kFloat).clone();
}
}  // namespace

at::Tensor policy_loss(CausalLM& model, const PolicyBatch& batch, const PolicyLossOptions& o,
                       const at::Tensor& old_lp, const at::Tensor& ref_lp, const PromptsOfRows* prompts) {
  const double norm = 1.0 / static_cast<double>(batch.kept_prompts);
  auto adv = torch::tensor(batch.advantages).to(model->device()).unsqueeze(1);
  const FusedUpdateScope fused;          // the update's attention, norms and RoPE fused (issue 18)
  std::optional<Bf16Autocast> autocast;  // as completion_logprobs opens it (model/autocast.h)
  if (prompts && model->autocast_bf16 && model->lm_weight().scalar_type() == at::kFloat)
    autocast.emplace(model->device());
  auto lp = prompts ? completion_logprobs_after(model, *prompts->states, prompts->rows, batch.completions)
                    : completion_logprobs(model, batch.prompts, batch.completions, PromptPass::kShared);
  autocast.reset();
  at::Tensor per_token;
  if (!o.clipped) {
    per_token = lp.token_logprobs * adv;
  } else {
    auto ratio = at::exp(lp.token_logprobs - old_lp.narrow(1, 0, lp.token_logprobs.size(1))) * lp.mask;
    per_token = at::min(ratio * adv, at::clamp(ratio, 1 - o.clip_eps, 1 + o.clip_eps) * adv) * lp.mask;
  }
  if (const auto credit = credit_mask(batch, per_token.size(1)); credit.defined())
    per_token = per_token * credit.to(per_token.device());
  auto loss = -per_token.sum() * norm;
  if (o.kl_coef > 0) {  // k3 estimator of KL(π_θ ‖ π_ref), per token
    auto d = (ref_lp - lp.token_logprobs) * lp.mask;
    const auto tokens = o.kl_tokens > 0 ? at::scalar_tensor(o.kl_tokens, lp.mask.options()) : lp.mask.sum();
    loss = loss + o.kl_coef * ((at::exp(d) - d - 1) * lp.mask).sum() / tokens;
  }
  return loss;
}

std::vector<PolicyBatch> length_microbatches(const PolicyBatch& batch, int64_t max_tokens) {
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < batch.advantages.size(); ++i)
    lengths.push_back(static_cast<int64_t>(batch.prompts[i].size() + batch.completions[i].size()));
  std::vector<PolicyBatch> parts;
  for (const auto& bucket : length_buckets(lengths, max_tokens)) {
    PolicyBatch& p = parts.emplace_back();
    p.kept_prompts = batch.kept_prompts;
    for (size_t i : bucket) append_row(p, batch, i);
  }
  return parts;
}

PolicyBatch dealt_rows(const PolicyBatch& batch, int shares, int index) {
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < batch.advantages.size(); ++i)
    lengths.push_back(static_cast<int64_t>(batch.prompts[i].size() + batch.completions[i].size()));
  PolicyBatch mine;
  mine.kept_prompts = batch.kept_prompts;
  const auto lists = deal_by_cost(lengths, shares);  // held: a range-for over a temporary's element dangles
  for (size_t i : lists[static_cast<size_t>(index)]) append_row(mine, batch, i);
  return mine;
}

PolicyBatch rank_rows(const PolicyBatch& batch, const World& world) {
  return world.distributed() ? dealt_rows(batch, world.size(), world.rank()) : batch;
}

namespace {

// The distinct prompts of an update's rows, run once per epoch for all of its parts (policy_loss.h). The
// parts read detached copies of the prompts' states (`leaves`), whose gradients backward_in_order adds in
// part order with the parameters'; backward() then carries them through the prompts' pass, once.
struct SharedPrompts {
  SharedPrompts(const PolicyBatch& batch, const std::vector<PolicyBatch>& parts)
      : distinct(distinct_prompts(batch.prompts)), of_part(parts.size()) {
    std::map<std::vector<int>, int64_t> index_of;
    for (size_t d = 0; d < distinct.prompts.size(); ++d) index_of.emplace(distinct.prompts[d], d);
    for (size_t k = 0; k < parts.size(); ++k) {
      of_part[k].states = &leaves;
      for (const auto& p : parts[k].prompts) of_part[k].rows.push_back(index_of.at(p));
    }
  }

  // The prompts' pass; returns the leaves the parts differentiate with respect to.
  std::vector<at::Tensor> forward(CausalLM& model) {
    outputs.clear();
    wrt.clear();
    if (distinct.prompts.empty()) return {};
    {
      const FusedUpdateScope fused;
      std::optional<Bf16Autocast> autocast;  // as completion_logprobs opens it
      if (model->autocast_bf16 && model->lm_weight().scalar_type() == at::kFloat)
        autocast.emplace(model->device());
      states = prompt_states(model, distinct.prompts);
    }
    leaves = states;
    for (auto* list : {&leaves.k, &leaves.v})
      for (auto& t : *list) wrt.push_back(t = t.detach().requires_grad_(true));
    wrt.push_back(leaves.last = leaves.last.detach().requires_grad_(true));
    for (auto* list : {&states.k, &states.v}) outputs.insert(outputs.end(), list->begin(), list->end());
    outputs.push_back(states.last);
    return wrt;
  }

  void backward() {
    std::vector<at::Tensor> outs, grads;
    for (size_t i = 0; i < outputs.size(); ++i)
      if (wrt[i].grad().defined()) {
        outs.push_back(outputs[i]);
        grads.push_back(wrt[i].grad());
      }
    if (!outs.empty()) torch::autograd::backward(outs, grads);
    states = PromptStates{};  // the pass's graph is spent
  }

  const DistinctPrompts distinct;
  std::vector<PromptsOfRows> of_part;  // each part's rows as indices into `distinct`

 private:
  PromptStates states, leaves;
  std::vector<at::Tensor> outputs, wrt;
};

}  // namespace

double policy_update(CausalLM& model, torch::optim::Optimizer& opt, const PolicyBatch& whole,
                     const RlOptions& o, CausalLM* reference, World& world, int* steps_taken) {
  if (whole.empty()) return 0;
  double tokens = 0;  // the KL term's normaliser: the whole batch's tokens
  for (const auto& c : whole.completions) tokens += static_cast<double>(c.size());
  const PolicyBatch batch = rank_rows(whole, world);
  // The micro-batches of this process's rows; with data threads and no micro-batches, one share of the rows
  // per thread. The threads' gradients are added in part order (runtime/data_threads.h).
  std::vector<PolicyBatch> parts;
  if (!batch.empty() && o.update_tokens <= 0 && o.data_threads > 1) {
    for (int t = 0; t < o.data_threads; ++t)
      if (auto share = dealt_rows(batch, o.data_threads, t); !share.empty())
        parts.push_back(std::move(share));
  } else if (!batch.empty()) {
    parts =
        o.update_tokens > 0 ? length_microbatches(batch, o.update_tokens) : std::vector<PolicyBatch>{batch};
  }
  std::vector<at::Tensor> old_lp, ref_lp(parts.size());
  for (size_t k = 0; k < parts.size(); ++k) {
    old_lp.push_back(old_logprobs_tensor(parts[k], model->device()));
    if (o.kl_coef > 0) {
      torch::NoGradGuard ng;
      ref_lp[k] = completion_logprobs(*reference, parts[k].prompts, parts[k].completions, PromptPass::kShared)
                      .token_logprobs;
    }
  }
  const PolicyLossOptions lo{o.ppo_epochs > 1, o.clip_eps, o.kl_coef, tokens};
  SharedPrompts shared(batch, parts);
  double loss_value = 0;
  for (int64_t epoch = 0; epoch < o.ppo_epochs; ++epoch) {
    opt.zero_grad();
    std::vector<at::Tensor> wrt = model->parameters();
    const auto leaves = shared.forward(model);
    wrt.insert(wrt.end(), leaves.begin(), leaves.end());
    loss_value = backward_in_order(
        parts.size(), o.data_threads,
        [&](size_t k) { return policy_loss(model, parts[k], lo, old_lp[k], ref_lp[k], &shared.of_part[k]); },
        wrt);
    shared.backward();
    all_reduce_gradients(world, model->parameters());
    loss_value = world.sum(loss_value);
    if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    opt.step();
    if (steps_taken) ++*steps_taken;
  }
  return loss_value;
}

}  // namespace handoff
