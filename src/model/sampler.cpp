#include "model/sampler.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <random>

#include "common/error.h"
#include "model/decode_steps.h"
#include "model/fused_decode.h"

namespace handoff {

namespace {

// What the decode loop carries from one token to the next.
struct DecodeState {
  int64_t P = 0;                // prompt columns (the longest prompt; shorter ones are left-padded)
  at::Tensor input;             // [B, P] the padded prompts
  at::Tensor key_valid;         // [rows, P + steps]: false on padding
  at::Tensor next_positions;    // [rows]: each row's first generated position (its prompt length)
  at::Tensor all_ids, all_pos;  // ids and positions of the prefix (the prompt; grown per token without cache)
  KVCache cache;
  // The decoding steps as a few GEMMs and fused loops where the model allows (model/fused_decode.h); then
  // the prompts' columns stay in `prefix`, one copy per distinct prompt, and `cache` holds the generated
  // ones.
  std::optional<FusedDecoder> fused;
  std::optional<SharedPrefix> prefix;
  // Rows still decoding, as indices into the caller's batch. Finished rows are compacted out of the batch
  // (KV cache, masks, positions, RNGs) once they are a third of it: completions differ in length by 2-5x in
  // RL rollouts, and decoding finished rows would waste that share of every step. Each row keeps its own RNG,
  // so a row's sample does not depend on when others finish.
  std::vector<int64_t> active;
  std::vector<std::mt19937_64> rngs;  // one per row of `active`
  std::vector<bool> done;             // per row of the caller's batch
  int64_t remaining = 0;              // rows of the caller's batch not done
};

// The prompt's forward pass (filling the cache when there is one): the logits of every row's next token.
// Rows with the same prompt (RL's G samples of each, paper §3.1) share one pass: the distinct prompts, padded
// to the same width P, go through the model and their cache columns and logits are copied to every row that
// asked for them — 1/G of the prompt's work, a quarter of a quick-preset rollout (bench/run_gapg_peer.sh).
// The values agree with each row's own pass to float rounding, not bit for bit: OpenBLAS's GEMM orders its
// sums by the number of rows it is given (SamplerTest.SharedPromptPassMatchesEachRowsOwnPass).
// With the fused decoder the distinct prompts' pass fills a SharedPrefix that every row reads in place: no
// copy of a prompt's columns per row, and attention reads each prompt's keys once for its G rows from the
// CPU's caches (one_token_attention_prefixed; the same bits as over copied columns).
at::Tensor prefill_shared_prefix(CausalLM& model, DecodeState& s,
                                 const std::vector<std::vector<int>>& prompts, int64_t steps,
                                 const SamplingOptions& opts) {
  const int64_t B = s.input.size(0), P = s.P;
  DistinctPrompts d;
  if (opts.share_prompt_pass) {
    d = distinct_prompts(prompts);
  } else {
    d.prompts = prompts;
    for (int64_t b = 0; b < B; ++b) d.first.push_back(b);
  }
  const int64_t D = static_cast<int64_t>(d.prompts.size());
  const PaddedPrompts up = left_pad(d.prompts, model->config, 0, s.input.device());
  KVCache shared = model->make_cache(D, P, /*zeroed=*/false);
  auto logits = model->forward(up.input, up.positions, up.key_valid, &shared).select(1, P - 1);
  SharedPrefix& prefix = s.prefix.emplace();
  prefix.k = std::move(shared.k);
  prefix.v = std::move(shared.v);
  prefix.rows = d.first;
  prefix.bias = at::zeros({D, 1, 1, P}, logits.options())
                    .masked_fill_(up.key_valid.logical_not().view({D, 1, 1, P}), -1e30);
  // The rows' own columns position-major, [B, steps, KV, hd] seen as [B, KV, steps, hd]: a row's keys of
  // every head lie in one stream, where head-major they were KV short ones whose first reads missed the CPU's
  // caches (attention was 40 % of a decoding step; position-major: generation 1.11x, alternated in one
  // process on models/device-chain, 256 rows). Column t is written at step t before it is read.
  const auto& c = model->config;
  s.cache = KVCache{};
  s.cache.capacity = steps;
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const auto opts = logits.options();
    s.cache.k.push_back(
        at::empty({B, steps, c.num_key_value_heads, c.head_dim()}, opts).permute({0, 2, 1, 3}));
    s.cache.v.push_back(
        at::empty({B, steps, c.num_key_value_heads, c.head_dim()}, opts).permute({0, 2, 1, 3}));
  }
  return D == B ? logits : logits.index_select(0, row_index(d, s.input.device()));  // D == B: in order
}

at::Tensor prefill(CausalLM& model, DecodeState& s, const std::vector<std::vector<int>>& prompts,
                   int64_t steps, const SamplingOptions& opts) {
  const int64_t B = s.input.size(0), P = s.P;
  if (opts.use_cache && s.fused) return prefill_shared_prefix(model, s, prompts, steps, opts);
  if (!opts.use_cache)
    return model->forward(s.input, s.all_pos, s.key_valid.narrow(1, 0, P)).select(1, P - 1);
  s.cache = model->make_cache(B, P + steps, /*zeroed=*/false);  // every column is written before it is read
  const DistinctPrompts d = distinct_prompts(prompts);
  if (!opts.share_prompt_pass || static_cast<int64_t>(d.prompts.size()) == B)
    return model->forward(s.input, s.all_pos, s.key_valid.narrow(1, 0, P), &s.cache).select(1, P - 1);
  const PaddedPrompts up = left_pad(d.prompts, model->config, 0, s.input.device());
  KVCache shared = model->make_cache(static_cast<int64_t>(d.prompts.size()), P, /*zeroed=*/false);
  auto logits = model->forward(up.input, up.positions, up.key_valid, &shared).select(1, P - 1);
  const auto rows = row_index(d, s.input.device());
  for (size_t l = 0; l < s.cache.k.size(); ++l) {
    s.cache.k[l].narrow(2, 0, P).copy_(shared.k[l].index_select(0, rows));
    s.cache.v[l].narrow(2, 0, P).copy_(shared.v[l].index_select(0, rows));
  }
  s.cache.length = P;
  return logits.index_select(0, rows);
}

// Appends the picked tokens and their log π to the unfinished rows; a row that picked a stop id is done.
// The picked tokens `nx`, their log π `lpx` and (boost on) P(boost token) `bpx`, one per row of the batch.
void record_tokens(const int64_t* nx, const float* lpx, const float* bpx, const SamplingOptions& opts,
                   DecodeState& s, Generation& gen) {
  const int64_t A = static_cast<int64_t>(s.active.size());
  for (int64_t i = 0; i < A; ++i) {
    const int64_t b = s.active[i];
    if (s.done[b]) continue;
    gen.tokens[b].push_back(static_cast<int>(nx[i]));
    gen.logprobs[b].push_back(lpx[i]);
    if (bpx) gen.boost_peak[b] = std::max(gen.boost_peak[b], bpx[i]);
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
  if (s.prefix) {  // position-major own columns (prefill_shared_prefix): copy the filled ones, keep the
                   // layout
    const auto compact = [&](at::Tensor& x) {
      const at::Tensor base = x.permute({0, 2, 1, 3});  // [B, steps, KV, hd]
      at::Tensor kept = at::empty({idx.size(0), base.size(1), base.size(2), base.size(3)}, base.options());
      kept.narrow(1, 0, s.cache.length).copy_(base.narrow(1, 0, s.cache.length).index_select(0, idx));
      x = kept.permute({0, 2, 1, 3});
    };
    for (auto& k : s.cache.k) compact(k);
    for (auto& v : s.cache.v) compact(v);
  } else {
    for (auto& k : s.cache.k) k = k.index_select(0, idx);
    for (auto& v : s.cache.v) v = v.index_select(0, idx);
  }
  s.key_valid = s.key_valid.index_select(0, idx);
  s.next_positions = s.next_positions.index_select(0, idx);
  step_ids = step_ids.index_select(0, idx);
  if (s.prefix) {
    std::vector<int64_t> rows;
    for (int64_t i : keep_rows) rows.push_back(s.prefix->rows[static_cast<size_t>(i)]);
    s.prefix->rows = std::move(rows);
  }
  s.active = std::move(kept);
  s.rngs = std::move(kept_rngs);
}

// The forward pass of generated token t (0-based) of every row in the batch: the logits of the next one.
at::Tensor decode_step(CausalLM& model, DecodeState& s, const at::Tensor& step_ids, int64_t t,
                       bool use_cache) {
  const int64_t P = s.P;
  auto step_pos = (s.next_positions + t).unsqueeze(1);
  if (use_cache && s.fused)
    return s.fused->step(step_ids.view({-1}), step_pos.view({-1}), {}, s.cache, &*s.prefix);
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
  if (seeds.size() != prompts.size()) throw Error("generate: one seed per prompt is required");
  check_sampling(model->config, opts);
  Generation gen;
  gen.tokens.resize(B);
  gen.logprobs.resize(B);
  gen.stopped.assign(B, false);
  if (opts.boost_token >= 0) gen.boost_peak.assign(B, 0.0f);
  if (B == 0) return gen;

  c10::InferenceMode guard;
  const auto& cfg = model->config;
  DecodeState s;
  s.P = longest_prompt(cfg, prompts);
  const int64_t steps = std::min<int64_t>(opts.max_new_tokens, cfg.max_position_embeddings - s.P);
  const auto dev = model->device();
  PaddedPrompts padded = left_pad(prompts, cfg, steps, dev);
  s.input = padded.input;
  s.all_pos = padded.positions;
  s.key_valid = padded.key_valid;
  s.next_positions = padded.next_positions;
  s.all_ids = s.input;
  s.rngs.reserve(B);
  for (auto seed : seeds) s.rngs.emplace_back(seed);
  s.active.resize(B);
  for (int64_t b = 0; b < B; ++b) s.active[b] = b;
  s.done.assign(B, false);
  s.remaining = B;

  if (opts.use_cache && FusedDecoder::applies(model)) s.fused.emplace(model, s.P + steps);
  at::Tensor logits = prefill(model, s, prompts, steps, opts);
  for (int64_t t = 0; t < steps && s.remaining > 0; ++t) {
    std::vector<std::mt19937_64*> rngs;
    for (auto& r : s.rngs) rngs.push_back(&r);
    at::Tensor next;
    if (pick_in_one_pass_applies(logits, opts)) {  // decode_steps.h
      std::vector<int64_t> ids;
      std::vector<float> lps;
      pick_in_one_pass(logits, opts, rngs, ids, lps);
      record_tokens(ids.data(), lps.data(), nullptr, opts, s, gen);
      if (s.remaining == 0 || t + 1 == steps) break;
      next = at::tensor(ids).to(dev);
    } else {
      at::Tensor boost_p;
      next = pick_next(logits, opts, rngs, &boost_p);
      // log π under the unmasked model: a banned token's mass is the model's, not the decoding rule's.
      const at::Tensor next_cpu = next.to(at::kCPU).contiguous();
      const at::Tensor lp_cpu = token_logprobs(logits, next).to(at::kCPU).contiguous();
      const at::Tensor bp_cpu = boost_p.defined() ? boost_p.to(at::kCPU).contiguous() : at::Tensor();
      record_tokens(next_cpu.data_ptr<int64_t>(), lp_cpu.data_ptr<float>(),
                    bp_cpu.defined() ? bp_cpu.data_ptr<float>() : nullptr, opts, s, gen);
      if (s.remaining == 0 || t + 1 == steps) break;
    }
    const int64_t A = static_cast<int64_t>(s.active.size());
    auto step_ids = next.unsqueeze(1);
    if (opts.use_cache && (A - s.remaining) * 3 >= A) drop_finished_rows(s, step_ids, dev);
    logits = decode_step(model, s, step_ids, t, opts.use_cache);
  }
  return gen;
}

}  // namespace handoff
