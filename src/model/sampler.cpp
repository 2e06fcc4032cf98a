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

void check_request(const ModelConfig& cfg, const std::vector<std::vector<int>>& prompts,
                   const SamplingOptions& opts, const std::vector<uint64_t>& seeds) {
  if (seeds.size() != prompts.size()) throw Error("generate: one seed per prompt is required");
  if (opts.top_p <= 0.0 || opts.top_p > 1.0) throw Error("top_p must be in (0, 1]");
  if (opts.temperature < 0.0) throw Error("temperature must be >= 0");
  for (int id : opts.banned_ids)
    if (id < 0 || id >= cfg.vocab_size)
      throw Error("generate: banned token id " + std::to_string(id) + " is outside the vocabulary");
}

// The longest prompt; every prompt must be non-empty and leave room for at least one new token.
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

// What the decode loop carries from one token to the next.
struct DecodeState {
  int64_t P = 0;                // prompt columns (the longest prompt; shorter ones are left-padded)
  at::Tensor input;             // [B, P] the padded prompts
  at::Tensor key_valid;         // [rows, P + steps]: false on padding
  at::Tensor next_positions;    // [rows]: each row's first generated position (its prompt length)
  at::Tensor all_ids, all_pos;  // ids and positions of the prefix (the prompt; grown per token without cache)
  KVCache cache;
  // Rows still decoding, as indices into the caller's batch. Finished rows are compacted out of the batch
  // (KV cache, masks, positions, RNGs) once they are a third of it: completions differ in length by 2-5x in
  // RL rollouts, and decoding finished rows would waste that share of every step. Each row keeps its own RNG,
  // so a row's sample does not depend on when others finish.
  std::vector<int64_t> active;
  std::vector<std::mt19937_64> rngs;  // one per row of `active`
  std::vector<bool> done;             // per row of the caller's batch
  int64_t remaining = 0;              // rows of the caller's batch not done
};

// Left-pads the prompts so every row's next token lands in the same column; positions count real tokens
// only. Fills input, all_ids, all_pos (= the prompt's positions), key_valid and next_positions.
void pad_prompts(DecodeState& s, const std::vector<std::vector<int>>& prompts, const ModelConfig& cfg,
                 int64_t steps, const at::Device& dev) {
  const int64_t B = static_cast<int64_t>(prompts.size()), P = s.P;
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
  auto long_opts = at::TensorOptions().dtype(at::kLong);
  s.input = torch::from_blob(ids.data(), {B, P}, long_opts).clone().to(dev);
  s.all_pos = torch::from_blob(pos.data(), {B, P}, long_opts).clone().to(dev);
  s.key_valid =
      torch::from_blob(valid.data(), {B, P + steps}, at::TensorOptions().dtype(at::kBool)).clone().to(dev);
  s.next_positions = torch::from_blob(next_pos.data(), {B}, long_opts).clone().to(dev);
  s.all_ids = s.input;
}

// The prompt's forward pass (filling the cache when there is one): the logits of every row's next token.
at::Tensor prefill(CausalLM& model, DecodeState& s, int64_t steps, bool use_cache) {
  const int64_t B = s.input.size(0), P = s.P;
  if (use_cache) {
    s.cache = model->make_cache(B, P + steps);
    return model->forward(s.input, s.all_pos, s.key_valid.narrow(1, 0, P), &s.cache).select(1, P - 1);
  }
  return model->forward(s.input, s.all_pos, s.key_valid.narrow(1, 0, P)).select(1, P - 1);
}

// Appends the picked tokens and their log π to the unfinished rows; a row that picked a stop id is done.
void record_tokens(const at::Tensor& next, const at::Tensor& logits, const SamplingOptions& opts,
                   DecodeState& s, Generation& gen) {
  // log π under the unmasked model: a banned token's mass is the model's, not the decoding rule's.
  auto lp = at::log_softmax(logits.to(at::kFloat), -1).gather(1, next.unsqueeze(1)).squeeze(1);
  auto next_cpu = next.to(at::kCPU).contiguous();
  auto lp_cpu = lp.to(at::kCPU).contiguous();
  const int64_t* nx = next_cpu.data_ptr<int64_t>();
  const float* lpx = lp_cpu.data_ptr<float>();
  const int64_t A = static_cast<int64_t>(s.active.size());
  for (int64_t i = 0; i < A; ++i) {
    const int64_t b = s.active[i];
    if (s.done[b]) continue;
    gen.tokens[b].push_back(static_cast<int>(nx[i]));
    gen.logprobs[b].push_back(lpx[i]);
    if (std::find(opts.stop_ids.begin(), opts.stop_ids.end(), static_cast<int>(nx[i])) !=
        opts.stop_ids.end()) {
      s.done[b] = true;
      gen.stopped[b] = true;
      --s.remaining;
    }
  }
}

// Removes the finished rows from the batch: KV cache, key mask, positions, RNGs and this step's ids.
void drop_finished_rows(DecodeState& s, at::Tensor& step_ids, const at::Device& dev) {
  const int64_t A = static_cast<int64_t>(s.active.size());
  std::vector<int64_t> keep_rows, kept;
  std::vector<std::mt19937_64> kept_rngs;
  for (int64_t i = 0; i < A; ++i)
    if (!s.done[s.active[i]]) {
      keep_rows.push_back(i);
      kept.push_back(s.active[i]);
      kept_rngs.push_back(s.rngs[i]);
    }
  auto idx = torch::from_blob(keep_rows.data(), {static_cast<int64_t>(keep_rows.size())},
                              at::TensorOptions().dtype(at::kLong))
                 .clone()
                 .to(dev);
  for (auto& k : s.cache.k) k = k.index_select(0, idx);
  for (auto& v : s.cache.v) v = v.index_select(0, idx);
  s.key_valid = s.key_valid.index_select(0, idx);
  s.next_positions = s.next_positions.index_select(0, idx);
  step_ids = step_ids.index_select(0, idx);
  s.active = std::move(kept);
  s.rngs = std::move(kept_rngs);
}

// The forward pass of generated token t (0-based) of every row in the batch: the logits of the next one.
at::Tensor decode_step(CausalLM& model, DecodeState& s, const at::Tensor& step_ids, int64_t t,
                       bool use_cache) {
  const int64_t P = s.P;
  auto step_pos = (s.next_positions + t).unsqueeze(1);
  if (use_cache)
    return model->forward(step_ids, step_pos, s.key_valid.narrow(1, 0, P + t + 1), &s.cache).select(1, 0);
  s.all_ids = at::cat({s.all_ids, step_ids}, 1);
  s.all_pos = at::cat({s.all_pos, step_pos}, 1);
  return model->forward(s.all_ids, s.all_pos, s.key_valid.narrow(1, 0, P + t + 1)).select(1, P + t);
}

}  // namespace

Generation generate(CausalLM& model, const std::vector<std::vector<int>>& prompts,
                    const SamplingOptions& opts, const std::vector<uint64_t>& seeds) {
  const int64_t B = static_cast<int64_t>(prompts.size());
  check_request(model->config, prompts, opts, seeds);
  Generation gen;
  gen.tokens.resize(B);
  gen.logprobs.resize(B);
  gen.stopped.assign(B, false);
  if (B == 0) return gen;

  c10::InferenceMode guard;
  const auto& cfg = model->config;
  DecodeState s;
  s.P = longest_prompt(cfg, prompts);
  const int64_t steps = std::min<int64_t>(opts.max_new_tokens, cfg.max_position_embeddings - s.P);
  const auto dev = model->device();
  pad_prompts(s, prompts, cfg, steps, dev);
  s.rngs.reserve(B);
  for (auto seed : seeds) s.rngs.emplace_back(seed);
  s.active.resize(B);
  for (int64_t b = 0; b < B; ++b) s.active[b] = b;
  s.done.assign(B, false);
  s.remaining = B;

  at::Tensor logits = prefill(model, s, steps, opts.use_cache);
  for (int64_t t = 0; t < steps && s.remaining > 0; ++t) {
    auto next = pick_with_boost(logits, opts, s.rngs);
    record_tokens(next, logits, opts, s, gen);
    if (s.remaining == 0 || t + 1 == steps) break;
    const int64_t A = static_cast<int64_t>(s.active.size());
    auto step_ids = next.unsqueeze(1);
    if (opts.use_cache && (A - s.remaining) * 3 >= A) drop_finished_rows(s, step_ids, dev);
    logits = decode_step(model, s, step_ids, t, opts.use_cache);
  }
  return gen;
}

}  // namespace handoff
