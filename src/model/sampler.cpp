#include "model/sampler.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>
#include <random>

#include "common/error.h"

namespace handoff {

namespace {

// Picks the next token of every row from logits [B, V]. Uniform draws come from each row's own generator on
// the host (B numbers per step), the inverse-CDF search runs batched on the model's device.
at::Tensor pick_tokens(const at::Tensor& logits, const SamplingOptions& opts,
                       std::vector<std::mt19937_64>& rngs) {
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
  for (int64_t b = 0; b < B; ++b) u[b] = uni(rngs[b]);
  auto cdf = probs.cumsum(-1);
  auto target = torch::tensor(u).to(logits.device()).unsqueeze(1) * cdf.narrow(1, probs.size(1) - 1, 1);
  auto idx = (cdf < target).sum(-1).clamp_max(probs.size(1) - 1);
  return order.defined() ? order.gather(1, idx.unsqueeze(1)).squeeze(1) : idx;
}

// The deployment knob (sampler.h): the token wins where P(token) ≥ threshold and is banned elsewhere.
at::Tensor pick_with_boost(const at::Tensor& logits, const SamplingOptions& opts,
                           std::vector<std::mt19937_64>& rngs) {
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
  return at::where(p >= opts.boost_threshold, at::full_like(next, opts.boost_token), next);
}

}  // namespace

Generation generate(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                    const SamplingOptions& opts, const std::vector<uint64_t>& seeds) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  if (seeds.size() != prompts.size()) throw Error("generate: one seed per prompt is required");
  if (opts.top_p <= 0.0 || opts.top_p > 1.0) throw Error("top_p must be in (0, 1]");
  if (opts.temperature < 0.0) throw Error("temperature must be >= 0");
  for (int id : opts.banned_ids)
    if (id < 0 || id >= model->config.vocab_size)
      throw Error("generate: banned token id " + std::to_string(id) + " is outside the vocabulary");
  Generation gen;
  gen.tokens.resize(B);
  gen.logprobs.resize(B);
  gen.stopped.assign(B, false);
  if (B == 0) return gen;

  c10::InferenceMode guard;
  const auto& cfg = model->config;
  int64_t P = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("generate: empty prompt");
    P = std::max<int64_t>(P, static_cast<int64_t>(p.size()));
  }
  if (P >= cfg.max_position_embeddings)
    throw Error("prompt of " + std::to_string(P) + " tokens does not fit the context of " +
                std::to_string(cfg.max_position_embeddings));
  const int64_t steps = std::min<int64_t>(opts.max_new_tokens, cfg.max_position_embeddings - P);

  // Left-pad so every row's next token lands in the same column; positions count real tokens only.
  std::vector<int64_t> ids(B * P, cfg.pad_token_id >= 0 ? cfg.pad_token_id : 0), pos(B * P, 0);
  std::vector<uint8_t> valid(B * (P + steps), 1);
  std::vector<int64_t> next_pos(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(prompts[b].size()), pad = P - n;
    for (int64_t t = 0; t < P; ++t) {
      if (t < pad) {
        valid[b * (P + steps) + t] = 0;
      } else {
        ids[b * P + t] = prompts[b][t - pad];
        pos[b * P + t] = t - pad;
      }
    }
    next_pos[b] = n;
  }
  const auto dev = model->device();
  auto long_opts = at::TensorOptions().dtype(at::kLong);
  auto input = torch::from_blob(ids.data(), {B, P}, long_opts).clone().to(dev);
  auto positions = torch::from_blob(pos.data(), {B, P}, long_opts).clone().to(dev);
  auto key_valid =
      torch::from_blob(valid.data(), {B, P + steps}, at::TensorOptions().dtype(at::kBool)).clone().to(dev);
  auto next_positions = torch::from_blob(next_pos.data(), {B}, long_opts).clone().to(dev);

  std::vector<std::mt19937_64> rngs;
  rngs.reserve(B);
  for (auto s : seeds) rngs.emplace_back(s);

  KVCache cache;
  at::Tensor logits;
  if (opts.use_cache) {
    cache = model->make_cache(B, P + steps);
    logits = model->forward(input, positions, key_valid.narrow(1, 0, P), &cache).select(1, P - 1);
  } else {
    logits = model->forward(input, positions, key_valid.narrow(1, 0, P)).select(1, P - 1);
  }
  std::vector<bool> done(B, false);
  int64_t remaining = B;
  at::Tensor all_ids = input, all_pos = positions;
  // Rows still decoding, as indices into the caller's batch. Finished rows are compacted out of the batch
  // (KV cache, masks, positions, RNGs) once they are a third of it: completions differ in length by 2-5x in
  // RL rollouts, and decoding finished rows would waste that share of every step. Each row keeps its own RNG,
  // so a row's sample does not depend on when others finish.
  std::vector<int64_t> active(B);
  for (int64_t b = 0; b < B; ++b) active[b] = b;
  for (int64_t t = 0; t < steps && remaining > 0; ++t) {
    auto next = pick_with_boost(logits, opts, rngs);
    // log π under the unmasked model: a banned token's mass is the model's, not the decoding rule's.
    auto lp = at::log_softmax(logits.to(at::kFloat), -1).gather(1, next.unsqueeze(1)).squeeze(1);
    auto next_cpu = next.to(at::kCPU).contiguous();
    auto lp_cpu = lp.to(at::kCPU).contiguous();
    const int64_t* nx = next_cpu.data_ptr<int64_t>();
    const float* lpx = lp_cpu.data_ptr<float>();
    const int64_t A = static_cast<int64_t>(active.size());
    for (int64_t i = 0; i < A; ++i) {
      const int64_t b = active[i];
      if (done[b]) continue;
      gen.tokens[b].push_back(static_cast<int>(nx[i]));
      gen.logprobs[b].push_back(lpx[i]);
      if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), static_cast<int>(nx[i])) !=
          opts.stop_ids.end()) {
        done[b] = true;
        gen.stopped[b] = true;
        --remaining;
      }
    }
    if (remaining == 0 || t + 1 == steps) break;
    auto step_ids = next.unsqueeze(1);
    if (opts.use_cache && (A - remaining) * 3 >= A) {
      std::vector<int64_t> keep_rows, kept;
      std::vector<std::mt19937_64> kept_rngs;
      for (int64_t i = 0; i < A; ++i)
        if (!done[active[i]]) {
          keep_rows.push_back(i);
          kept.push_back(active[i]);
          kept_rngs.push_back(rngs[i]);
        }
      auto idx = torch::from_blob(keep_rows.data(), {static_cast<int64_t>(keep_rows.size())}, long_opts)
                     .clone()
                     .to(dev);
      for (auto& k : cache.k) k = k.index_select(0, idx);
      for (auto& v : cache.v) v = v.index_select(0, idx);
      key_valid = key_valid.index_select(0, idx);
      next_positions = next_positions.index_select(0, idx);
      step_ids = step_ids.index_select(0, idx);
      active = std::move(kept);
      rngs = std::move(kept_rngs);
    }
    auto step_pos = (next_positions + t).unsqueeze(1);
    if (opts.use_cache) {
      logits = model->forward(step_ids, step_pos, key_valid.narrow(1, 0, P + t + 1), &cache).select(1, 0);
    } else {
      all_ids = at::cat({all_ids, step_ids}, 1);
      all_pos = at::cat({all_pos, step_pos}, 1);
      logits = model->forward(all_ids, all_pos, key_valid.narrow(1, 0, P + t + 1)).select(1, P + t);
    }
  }
  return gen;
}

}  // namespace handoff
