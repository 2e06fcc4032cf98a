#include "model/decode_steps.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.h"
#include "model/one_token_attention.h"

namespace handoff {

namespace {

// Uniform draws come from each row's own generator on the host (B numbers per step); the inverse-CDF search
// runs batched on the model's device.
at::Tensor pick_tokens(const at::Tensor& logits, const SamplingOptions& opts,
                       const std::vector<std::mt19937_64*>& rngs) {
  if (opts.temperature <= 0.0) return logits.argmax(-1);
  auto probs = at::softmax(logits.to(at::kFloat) / opts.temperature, -1);
  at::Tensor order;
  if (opts.top_p < 1.0) {
    auto sorted = probs.sort(-1, /*descending=*/true);
    probs = std::get<0>(sorted);
    order = std::get<1>(sorted);
    // Keep the smallest prefix whose mass reaches top_p (the first token always stays).
    auto before = probs.cumsum(-1) - probs;
    probs = probs.masked_fill(before >= opts.top_p, 0.0);
  }
  const int64_t B = logits.size(0);
  std::vector<float> u(B);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  for (int64_t b = 0; b < B; ++b) u[b] = uni(*rngs[b]);
  auto cdf = probs.cumsum(-1);
  auto target = at::tensor(u).to(logits.device()).unsqueeze(1) * cdf.narrow(1, probs.size(1) - 1, 1);
  auto idx = (cdf < target).sum(-1).clamp_max(probs.size(1) - 1);
  return order.defined() ? order.gather(1, idx.unsqueeze(1)).squeeze(1) : idx;
}

}  // namespace

void check_sampling(const ModelConfig& cfg, const SamplingOptions& opts) {
  if (opts.top_p <= 0.0 || opts.top_p > 1.0) throw Error("top_p must be in (0, 1]");
  if (opts.temperature < 0.0) throw Error("temperature must be >= 0");
  for (int id : opts.banned_ids)
    if (id < 0 || id >= cfg.vocab_size)
      throw Error("generate: banned token id " + std::to_string(id) + " is outside the vocabulary");
}

int64_t longest_prompt(const ModelConfig& cfg, const std::vector<std::vector<int>>& prompts) {
  int64_t P = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("generate: empty prompt");
    P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  }
  if (P >= cfg.max_position_embeddings)
    throw Error("prompt of " + std::to_string(P) + " tokens does not fit the context of " +
                std::to_string(cfg.max_position_embeddings));
  return P;
}

DistinctPrompts distinct_prompts(const std::vector<std::vector<int>>& prompts) {
  DistinctPrompts d;
  std::map<std::vector<int>, int64_t> seen;
  for (const auto& p : prompts) {
    auto it = seen.emplace(p, static_cast<int64_t>(d.prompts.size())).first;
    if (it->second == static_cast<int64_t>(d.prompts.size())) d.prompts.push_back(p);
    d.first.push_back(it->second);
  }
  return d;
}

at::Tensor row_index(const DistinctPrompts& d, const at::Device& dev) {
  const auto n = static_cast<int64_t>(d.first.size());
  return at::from_blob(const_cast<int64_t*>(d.first.data()), {n}, at::TensorOptions().dtype(at::kLong))
      .clone()
      .to(dev);
}

PaddedPrompts left_pad(const std::vector<std::vector<int>>& prompts, const ModelConfig& cfg,
                       int64_t extra_cols, const at::Device& dev) {
  PaddedPrompts out;
  const int64_t B = static_cast<int64_t>(prompts.size()), P = longest_prompt(cfg, prompts);
  const int64_t W = P + extra_cols;
  std::vector<int64_t> ids(B * P, cfg.pad_token_id >= 0 ? cfg.pad_token_id : 0), pos(B * P, 0);
  std::vector<uint8_t> valid(B * W, 1);
  std::vector<int64_t> next_pos(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size()), pad = P - n;
    for (int64_t t = 0; t < P; ++t) {
      if (t < pad) {
        valid[b * W + t] = 0;
      } else {
        ids[b * P + t] = prompts[b][t - pad];
        pos[b * P + t] = t - pad;
      }
    }
    next_pos[b] = n;
  }
  auto long_opts = at::TensorOptions().dtype(at::kLong);
  out.P = P;
  out.input = at::from_blob(ids.data(), {B, P}, long_opts).clone().to(dev);
  out.positions = at::from_blob(pos.data(), {B, P}, long_opts).clone().to(dev);
  out.key_valid = at::from_blob(valid.data(), {B, W}, at::TensorOptions().dtype(at::kBool)).clone().to(dev);
  out.next_positions = at::from_blob(next_pos.data(), {B}, long_opts).clone().to(dev);
  return out;
}

// The deployment knob (sampler.h): the token wins where P(token) ≥ threshold and is banned elsewhere.
at::Tensor pick_next(const at::Tensor& logits, const SamplingOptions& opts,
                     const std::vector<std::mt19937_64*>& rngs, at::Tensor* boost_p) {
  at::Tensor masked = logits;
  if (!opts.banned_ids.empty() || opts.boost_token >= 0) {
    masked = logits.clone();
    for (int id : opts.banned_ids) masked.select(1, id).fill_(-std::numeric_limits<float>::infinity());
    if (opts.boost_token >= 0)
      masked.select(1, opts.boost_token).fill_(-std::numeric_limits<float>::infinity());
  }
  auto next = pick_tokens(masked, opts, rngs);
  if (opts.boost_token < 0) return next;
  auto p = at::softmax(logits.to(at::kFloat), -1).select(1, opts.boost_token);
  if (boost_p) *boost_p = p;
  return at::where(p >= opts.boost_threshold, at::full_like(next, opts.boost_token), next);
}

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& next) {
  return at::log_softmax(logits.to(at::kFloat), -1).gather(1, next.unsqueeze(1)).squeeze(1);
}

bool pick_in_one_pass_applies(const at::Tensor& logits, const SamplingOptions& opts) {
  return logits.device().is_cpu() && logits.scalar_type() == at::kFloat && logits.dim() == 2 &&
         logits.size(1) > 0 && opts.top_p >= 1.0 && opts.banned_ids.empty() && opts.boost_token < 0;
}

void pick_in_one_pass(const at::Tensor& logits, const SamplingOptions& opts,
                      const std::vector<std::mt19937_64*>& rngs, std::vector<int64_t>& next,
                      std::vector<float>& logprob) {
  const at::Tensor x = logits.contiguous();
  const int64_t B = x.size(0), V = x.size(1);
  const bool greedy = opts.temperature <= 0.0;
  const float temp = greedy ? 1.0f : static_cast<float>(opts.temperature);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> e(static_cast<size_t>(V));
  next.assign(static_cast<size_t>(B), 0);
  logprob.assign(static_cast<size_t>(B), 0.0f);
  for (int64_t b = 0; b < B; ++b) {
    const float* row = x.data_ptr<float>() + b * V;
    int64_t best = 0;
    for (int64_t i = 1; i < V; ++i)
      if (row[i] > row[best]) best = i;
    const float top = row[best];
    int64_t pick = best;
    double total1 = -1.0;  // Σ e^(x − max) at temperature 1, once computed
    if (!greedy) {
      for (int64_t i = 0; i < V; ++i) e[i] = row[i] / temp;
      const float scaled_top = top / temp;
      exp_shifted(e.data(), V, scaled_top);
      double total = 0.0;
      for (int64_t i = 0; i < V; ++i) total += e[i];
      const double target = static_cast<double>(uni(*rngs[static_cast<size_t>(b)])) * total;
      double run = 0.0;
      pick = V - 1;
      for (int64_t i = 0; i < V; ++i) {
        run += e[i];
        if (run >= target) {
          pick = i;
          break;
        }
      }
      if (opts.temperature == 1.0) total1 = total;
    }
    if (total1 < 0.0) {
      for (int64_t i = 0; i < V; ++i) e[i] = row[i];
      exp_shifted(e.data(), V, top);
      total1 = 0.0;
      for (int64_t i = 0; i < V; ++i) total1 += e[i];
    }
    next[static_cast<size_t>(b)] = pick;
    logprob[static_cast<size_t>(b)] = row[pick] - top - static_cast<float>(std::log(total1));
  }
}

}  // namespace handoff
