// Batched decoding steps as a few GEMMs and fused loops (model/fused_decode.h) against the decoder's forward
// over the same KV cache: logits and cache columns to float rounding on llama (grouped heads, tied head),
// qwen2 (q/k/v biases, one key/value head) and qwen3 (per-head q/k norms) shapes with left-padded prompts;
// generation through it equal to recomputing every prefix; what it cannot decode refused.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "common/error.h"
#include "model/decode_steps.h"
#include "model/decoder.h"
#include "model/fused_decode.h"
#include "model/sampler.h"

using namespace handoff;

namespace {

ModelConfig config_of(const std::string& type, int64_t kv_heads, int64_t layers) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = 60;
  c.hidden_size = 64;  // heads of 16: a size the one-token attention kernel has
  c.intermediate_size = 96;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 48;
  c.tie_word_embeddings = type == "llama";
  return c;
}

double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return ((got - want).abs().max() / (1.0 + want.abs().max())).item<double>();
}

KVCache copy_of(const KVCache& c) {
  KVCache out = c;
  for (auto& k : out.k) k = k.clone();
  for (auto& v : out.v) v = v.clone();
  return out;
}

}  // namespace

TEST(FusedDecodeTest, StepsMatchTheDecodersForwardOverTheSameCache) {
  torch::manual_seed(5);
  for (const auto& cfg : {config_of("llama", 2, 2), config_of("qwen2", 1, 1), config_of("qwen3", 4, 2)}) {
    CausalLM m(cfg);
    m->eval();
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(at::randn_like(p) * 0.05);  // norms' weights and biases off 1/0
    ASSERT_TRUE(FusedDecoder::applies(m)) << cfg.model_type;
    const std::vector<std::vector<int>> prompts = {{1, 5, 6, 7}, {1, 9}, {1, 10, 11, 12, 13, 14}};
    const int64_t steps = 6;
    const PaddedPrompts pp = left_pad(prompts, cfg, steps, m->device());
    KVCache ours = m->make_cache(3, pp.P + steps);
    m->forward(pp.input, pp.positions, pp.key_valid.narrow(1, 0, pp.P), &ours);
    KVCache theirs = copy_of(ours);
    // q/k/v and gate/up packed into one weight each (the presets' small models), and one GEMM a projection
    // (large models: no copy of their weights), in turn.
    const FusedDecoder packed(m, cfg.max_position_embeddings), apart(m, cfg.max_position_embeddings, 0);
    auto ids = at::tensor(std::vector<int64_t>{3, 17, 42});
    for (int64_t t = 0; t < steps; ++t) {
      const auto pos = pp.next_positions + t;
      const auto valid = pp.key_valid.narrow(1, 0, pp.P + t + 1);
      const auto got = (t % 2 ? apart : packed).step(ids, pos, valid, ours);
      const auto want = m->forward(ids.unsqueeze(1), pos.unsqueeze(1), valid, &theirs).select(1, 0);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_LT(max_rel(got, want), 1e-5) << cfg.model_type << " step " << t;
      EXPECT_EQ(ours.length, theirs.length);
      for (size_t l = 0; l < ours.k.size(); ++l) {
        EXPECT_LT(max_rel(ours.k[l].narrow(2, 0, ours.length), theirs.k[l].narrow(2, 0, ours.length)), 1e-5);
        EXPECT_LT(max_rel(ours.v[l].narrow(2, 0, ours.length), theirs.v[l].narrow(2, 0, ours.length)), 1e-5);
      }
      ids = want.argmax(-1);
    }
    // One row (a GEMV per projection), in both forms.
    KVCache one = m->make_cache(1, 8), ref = m->make_cache(1, 8);
    const auto id = at::tensor(std::vector<int64_t>{4}), at0 = at::tensor(std::vector<int64_t>{0});
    const auto want = m->forward(id.unsqueeze(1), at0.unsqueeze(1), {}, &ref).select(1, 0);
    EXPECT_LT(max_rel(apart.step(id, at0, {}, one), want), 1e-5) << cfg.model_type;
    one.length = 0;
    EXPECT_LT(max_rel(packed.step(id, at0, {}, one), want), 1e-5) << cfg.model_type;
  }
}

TEST(FusedDecodeTest, GenerationEqualsRecomputingEveryPrefix) {
  torch::manual_seed(8);
  CausalLM m(config_of("llama", 2, 2));
  m->eval();
  // Distinct prompts, and prompts repeated as a GAPG group's samples (their columns shared, not copied).
  const std::vector<int> a = {1, 9}, b = {1, 10, 11, 12, 13, 14}, c = {1, 5, 6, 7};
  for (const std::vector<std::vector<int>>& prompts :
       {std::vector<std::vector<int>>{a, b, c, {1, 2}},
        std::vector<std::vector<int>>{a, b, a, c, b, a, c, b, a}}) {
    SamplingOptions o;
    o.max_new_tokens = 16;
    o.stop_ids = {3, 4, 5, 6};  // rows finish apart: the batch drops them, down to one row on its own
    std::vector<uint64_t> seeds;
    for (size_t i = 0; i < prompts.size(); ++i) seeds.push_back(40 + i);
    const auto fused = generate(m, prompts, o, seeds);
    o.use_cache = false;
    const auto full = generate(m, prompts, o, seeds);
    EXPECT_EQ(fused.tokens, full.tokens);
    std::vector<size_t> lengths;
    for (size_t i = 0; i < prompts.size(); ++i) {
      lengths.push_back(fused.tokens[i].size());
      for (size_t t = 0; t < fused.logprobs[i].size(); ++t)
        EXPECT_NEAR(fused.logprobs[i][t], full.logprobs[i][t], 1e-4);
    }
    std::sort(lengths.begin(), lengths.end());
    EXPECT_LT(lengths[lengths.size() / 2], lengths.back());  // most rows ended before the last one
  }
}

TEST(FusedDecodeTest, RefusesWhatItCannotDecode) {
  torch::manual_seed(2);
  CausalLM m(config_of("llama", 2, 1));
  m->eval();
  const FusedDecoder fused(m, 48);
  KVCache cache = m->make_cache(2, 3);
  const auto pos = at::tensor(std::vector<int64_t>{0, 0});
  EXPECT_THROW(fused.step(at::tensor(std::vector<int64_t>{1, 60}), pos, {}, cache), Error);  // id ≥ vocab
  EXPECT_THROW(
      fused.step(at::tensor(std::vector<int64_t>{1, 2}), at::tensor(std::vector<int64_t>{0, 48}), {}, cache),
      Error);  // a position past the context
  EXPECT_THROW(
      fused.step(at::tensor(std::vector<int64_t>{1}), at::tensor(std::vector<int64_t>{0}), {}, cache),
      Error);  // a batch other than the cache's
  cache.length = 3;
  EXPECT_THROW(fused.step(at::tensor(std::vector<int64_t>{1, 2}), pos, {}, cache), Error);  // cache full
  CausalLM narrow_heads(config_of("llama", 2, 1));
  narrow_heads->config.hidden_size = 32;  // heads of 8: no kernel copy
  EXPECT_FALSE(FusedDecoder::applies(narrow_heads));
  m->store_weights_bf16();
  EXPECT_FALSE(FusedDecoder::applies(m));
  EXPECT_THROW(FusedDecoder(m, 8), Error);
}
