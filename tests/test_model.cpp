// Model: parameter registration, KV-cache decoding vs recomputation, sampling determinism and batch
// invariance.
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>

#include "common/error.h"
#include "model/decode_steps.h"
#include "model/decoder.h"
#include "model/gemv.h"
#include "model/logprobs.h"
#include "model/sampler.h"
#include "runtime/data_threads.h"

using namespace handoff;

namespace {

ModelConfig tiny_config(const std::string& type = "llama", int64_t kv_heads = 2) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = type == "llama";
  return c;
}

int64_t count_params(CausalLM& m) {
  int64_t n = 0;
  for (auto& p : m->parameters()) n += p.numel();
  return n;
}

}  // namespace

TEST(ModelTest, ParameterCountMatchesAnalyticCount) {
  for (auto cfg : {tiny_config("llama", 4), tiny_config("llama", 2), tiny_config("qwen2", 1)}) {
    torch::manual_seed(0);
    CausalLM m(cfg);
    EXPECT_EQ(count_params(m), cfg.num_parameters()) << cfg.model_type << " kv=" << cfg.num_key_value_heads;
  }
  auto cfg = tiny_config("qwen2", 2);
  CausalLM m(cfg);
  bool has_bias = false, has_lm_head = false;
  for (auto& p : m->named_parameters()) {
    has_bias |= p.key() == "model.layers.1.self_attn.k_proj.bias";
    has_lm_head |= p.key() == "lm_head.weight";
  }
  EXPECT_TRUE(has_bias);
  EXPECT_TRUE(has_lm_head);
}

TEST(ModelTest, HfParameterNames) {
  CausalLM m(tiny_config());
  std::vector<std::string> names;
  for (auto& p : m->named_parameters()) names.push_back(p.key());
  for (const std::string want :
       {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.norm.weight"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

TEST(ModelTest, KvCacheDecodingMatchesRecomputation) {
  torch::manual_seed(1);
  ModelConfig wide = tiny_config("qwen2", 2);  // heads of 32: one-token steps take one_token_attention
  wide.hidden_size = 128;
  for (auto cfg : {tiny_config("llama", 2), tiny_config("qwen2", 4), wide}) {
    CausalLM m(cfg);
    m->eval();
    c10::InferenceMode guard;
    const int64_t B = 3, T = 12;
    auto ids = torch::randint(4, cfg.vocab_size, {B, T}, at::kLong);
    auto pos = at::arange(T, at::kLong).unsqueeze(0).expand({B, T});
    auto full = m->forward(ids, pos);
    // Prefill 5 tokens, then one token at a time.
    auto cache = m->make_cache(B, T);
    auto part = m->forward(ids.narrow(1, 0, 5), pos.narrow(1, 0, 5), {}, &cache);
    EXPECT_LT((part - full.narrow(1, 0, 5)).abs().max().item<double>(), 1e-4);
    for (int64_t t = 5; t < T; ++t) {
      auto step = m->forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), {}, &cache);
      EXPECT_LT((step.select(1, 0) - full.select(1, t)).abs().max().item<double>(), 1e-4) << "t=" << t;
    }
    EXPECT_EQ(cache.length, T);
  }
}

TEST(ModelTest, LeftPaddingDoesNotChangeLogits) {
  torch::manual_seed(2);
  CausalLM m(tiny_config());
  m->eval();
  c10::InferenceMode guard;
  auto ids = torch::randint(4, 50, {1, 6}, at::kLong);
  auto alone = m->forward(ids, at::arange(6, at::kLong).unsqueeze(0)).select(1, 5);
  // Same sequence with 3 pads in front, masked out, positions counting real tokens only.
  auto padded = at::cat({at::zeros({1, 3}, at::kLong), ids}, 1);
  auto pos = at::cat({at::zeros({1, 3}, at::kLong), at::arange(6, at::kLong).unsqueeze(0)}, 1);
  auto valid = at::cat({at::zeros({1, 3}, at::kBool), at::ones({1, 6}, at::kBool)}, 1);
  auto out = m->forward(padded, pos, valid).select(1, 8);
  EXPECT_LT((out - alone).abs().max().item<double>(), 1e-4);
}

TEST(SamplerTest, GreedyIsDeterministicAndCacheMatchesRecompute) {
  torch::manual_seed(3);
  CausalLM m(tiny_config());
  m->eval();
  std::vector<std::vector<int>> prompts = {{1, 5, 6, 7}, {1, 9}, {1, 10, 11, 12, 13, 14}};
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 20;
  auto a = generate(m, prompts, o, {1, 2, 3});
  auto b = generate(m, prompts, o, {7, 8, 9});  // seeds do not matter for greedy
  o.use_cache = false;
  auto c = generate(m, prompts, o, {1, 2, 3});
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens, c.tokens);
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_EQ(a.tokens[i].size(), 20u);
    for (size_t t = 0; t < a.logprobs[i].size(); ++t) EXPECT_NEAR(a.logprobs[i][t], c.logprobs[i][t], 1e-4);
  }
}

TEST(SamplerTest, BatchedSamplingEqualsPerSequenceSampling) {
  torch::manual_seed(4);
  CausalLM m(tiny_config());
  m->eval();
  std::vector<std::vector<int>> prompts = {{1, 5, 6, 7}, {1, 9}, {1, 10, 11, 12, 13, 14}, {1, 20, 21}};
  std::vector<uint64_t> seeds = {11, 12, 13, 14};
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_p = 0.9;
  o.max_new_tokens = 16;
  o.stop_ids = {2};
  auto batched = generate(m, prompts, o, seeds);
  bool any_differs = false;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto single = generate(m, {prompts[i]}, o, {seeds[i]});
    EXPECT_EQ(batched.tokens[i], single.tokens[0]) << "row " << i;
    if (i > 0 && batched.tokens[i] != batched.tokens[0]) any_differs = true;
  }
  EXPECT_TRUE(any_differs);  // the rows really are sampled, not copies
  auto again = generate(m, prompts, o, seeds);
  EXPECT_EQ(batched.tokens, again.tokens);
  auto other = generate(m, prompts, o, {21, 22, 23, 24});
  EXPECT_NE(batched.tokens, other.tokens);
}

// RL rollouts sample G completions of each prompt in one batch; the rows of one prompt share a single pass
// over it (sampler.cpp, prefill). The samples must be those of each row's own pass and the log-probs equal to
// float rounding (OpenBLAS orders a GEMM's sums by its row count, so not bit for bit): checked on a
// prompt-major batch of prompts of different lengths (left padding), on the default model and on grouped
// heads of 32.
TEST(SamplerTest, SharedPromptPassMatchesEachRowsOwnPass) {
  torch::manual_seed(6);
  ModelConfig wide = tiny_config("qwen2", 2);
  wide.hidden_size = 128;
  for (const auto& cfg : {tiny_config(), wide}) {
    CausalLM m(cfg);
    m->eval();
    std::vector<std::vector<int>> prompts;
    std::vector<uint64_t> seeds;
    for (const auto& p : std::vector<std::vector<int>>{{1, 5, 6, 7}, {1, 9}, {1, 10, 11, 12, 13, 14}})
      for (int g = 0; g < 4; ++g) {
        prompts.push_back(p);
        seeds.push_back(100 + seeds.size());
      }
    SamplingOptions o;
    o.max_new_tokens = 12;
    o.stop_ids = {2};
    const auto shared = generate(m, prompts, o, seeds);
    o.share_prompt_pass = false;
    const auto own = generate(m, prompts, o, seeds);
    EXPECT_EQ(shared.tokens, own.tokens);
    for (size_t r = 0; r < own.logprobs.size(); ++r)
      for (size_t t = 0; t < own.logprobs[r].size(); ++t)
        EXPECT_NEAR(shared.logprobs[r][t], own.logprobs[r][t], 1e-5) << "row " << r << " token " << t;
    EXPECT_NE(shared.tokens[0], shared.tokens[1]);  // the copies of a prompt are sampled apart
  }
}

// The policy update's rows come in groups with one prompt (GAPG's G samples); completion_logprobs then runs
// each distinct prompt once and its completions over its cached keys and values. Log-probs and every
// parameter's gradient must be those of one whole sequence per row, to float rounding; prompts of different
// lengths (left padding in the shared pass), completions of different lengths (one empty), grouped heads.
TEST(ModelTest, SharedPromptLogprobsMatchOneSequencePerRow) {
  torch::manual_seed(7);
  CausalLM m(tiny_config("llama", 2));
  const std::vector<std::vector<int>> prompts = {{1, 5, 6, 7}, {1, 5, 6, 7}, {1, 9},
                                                 {1, 9},       {1, 9},       {1, 3, 4}};
  const std::vector<std::vector<int>> completions = {{8, 9, 10}, {11},    {12, 13, 14, 15, 16},
                                                     {},         {17, 2}, {18, 19}};
  auto weights = torch::randn({6, 5});
  std::vector<std::vector<at::Tensor>> grads;
  std::vector<at::Tensor> values, masks;
  for (bool share : {true, false}) {
    for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
    auto lp = completion_logprobs(m, prompts, completions, share ? PromptPass::kShared : PromptPass::kPerRow);
    (lp.token_logprobs * weights.narrow(1, 0, lp.token_logprobs.size(1))).sum().backward();
    values.push_back(lp.token_logprobs.detach());
    masks.push_back(lp.mask);
    grads.emplace_back();
    for (auto& p : m->parameters()) grads.back().push_back(p.grad().clone());
  }
  ASSERT_EQ(values[0].sizes(), values[1].sizes());
  EXPECT_TRUE(masks[0].equal(masks[1]));
  EXPECT_LT((values[0] - values[1]).abs().max().item<double>(), 1e-5);
  EXPECT_GT(values[1].abs().sum().item<double>(), 1.0);  // real log-probs, not zeros
  for (size_t i = 0; i < grads[0].size(); ++i)
    EXPECT_LT((grads[0][i] - grads[1][i]).abs().max().item<double>(),
              1e-5 * (1 + grads[1][i].abs().max().item<double>()))
        << "parameter " << i;
}

TEST(SamplerTest, StopsOnStopTokenAndRejectsBadOptions) {
  torch::manual_seed(5);
  auto cfg = tiny_config();
  CausalLM m(cfg);
  m->eval();
  {
    // Make token 7 overwhelmingly likely so the row stops right away.
    torch::NoGradGuard ng;
    m->model->norm->weight.zero_();
  }
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 10;
  auto g = generate(m, {{1, 2, 3}}, o, {0});
  ASSERT_FALSE(g.tokens[0].empty());
  o.stop_ids = {g.tokens[0][0]};
  auto s = generate(m, {{1, 2, 3}}, o, {0});
  EXPECT_EQ(s.tokens[0].size(), 1u);
  EXPECT_TRUE(s.stopped[0]);
  o.top_p = 0;
  EXPECT_THROW(generate(m, {{1, 2}}, o, {0}), std::exception);
  o.top_p = 1;
  EXPECT_THROW(generate(m, {{1, 2}}, o, {}), std::exception);
  std::vector<int> too_long(cfg.max_position_embeddings, 5);
  EXPECT_THROW(generate(m, {too_long}, o, {0}), std::exception);
}

TEST(LogprobsTest, MatchSamplerLogprobs) {
  torch::manual_seed(6);
  CausalLM m(tiny_config("qwen2", 2));
  m->eval();
  std::vector<std::vector<int>> prompts = {{1, 5, 6}, {1, 9, 10, 11, 12}};
  SamplingOptions o;
  o.temperature = 1.0;
  o.max_new_tokens = 8;
  auto g = generate(m, prompts, o, {3, 4});
  auto lp = completion_logprobs(m, prompts, g.tokens, PromptPass::kShared);
  for (size_t i = 0; i < prompts.size(); ++i)
    for (size_t t = 0; t < g.tokens[i].size(); ++t)
      EXPECT_NEAR(lp.token_logprobs[i][t].item<double>(), g.logprobs[i][t], 1e-4);
  // Gradient flows through the log-probs to the parameters.
  lp.token_logprobs.sum().backward();
  EXPECT_GT(m->model->embed_tokens->weight.grad().abs().sum().item<double>(), 0.0);
}

TEST(SamplerTest, HandoffKnobEmitsTheTokenExactlyAboveItsThreshold) {
  torch::manual_seed(8);
  CausalLM m(tiny_config());
  m->eval();
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 6;
  auto plain = generate(m, {{1, 5, 6}}, o, {0});
  o.boost_token = 3;
  o.boost_threshold = 0.0;  // any probability reaches it: the token is emitted at once
  o.stop_ids = {3};
  auto forced = generate(m, {{1, 5, 6}}, o, {0});
  EXPECT_EQ(forced.tokens[0], std::vector<int>{3});
  o.boost_threshold = 1.1;  // unreachable: the token is never emitted ...
  o.stop_ids = {};
  o.boost_token = plain.tokens[0][0];  // ... even where plain greedy decoding picks it
  auto banned = generate(m, {{1, 5, 6}}, o, {0});
  EXPECT_NE(banned.tokens[0][0], plain.tokens[0][0]);
  for (int t : banned.tokens[0]) EXPECT_NE(t, o.boost_token);
  o.boost_token = -1;  // knob off: plain greedy
  EXPECT_EQ(generate(m, {{1, 5, 6}}, o, {0}).tokens, plain.tokens);
}

// --precision bf16: the forward runs under bf16 autocast and still returns fp32 logits; the result is close
// to fp32 (bf16 has an 8-bit mantissa) but not identical (autocast really ran), gradients reach fp32
// parameters, and the autocast state is restored afterwards (it is thread-local and must not leak into other
// code).
TEST(ModelTest, Bf16AutocastIsCloseToFp32AndScoped) {
  torch::manual_seed(5);
  CausalLM m(tiny_config());
  auto ids = torch::randint(4, 50, {2, 12}, at::kLong);
  auto pos = at::arange(12, at::kLong).unsqueeze(0).expand({2, 12});
  at::Tensor ref;
  {
    c10::InferenceMode guard;
    ref = m->forward(ids, pos);
  }
  ASSERT_FALSE(m->autocast_bf16);
  m->autocast_bf16 = true;
  auto logits = m->forward(ids, pos);
  EXPECT_EQ(logits.scalar_type(), at::kFloat);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  const double diff = (logits.detach() - ref).abs().max().item<double>();
  const double scale = ref.abs().max().item<double>();
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.05 * scale) << "bf16 logits " << diff << " away from fp32 (scale " << scale << ")";
  // The same greedy choice almost everywhere.
  const double agree = (logits.detach().argmax(-1) == ref.argmax(-1)).to(at::kFloat).mean().item<double>();
  EXPECT_GE(agree, 0.9);
  // Backward through autocast: fp32 gradients on fp32 weights.
  at::log_softmax(logits, -1).select(-1, 7).mean().backward();
  for (const auto& p : m->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().scalar_type(), at::kFloat);
    EXPECT_TRUE(p.grad().isfinite().all().item<bool>());
  }
  // The training path (completion log-probs, used by SFT and RL losses) runs under the same autocast.
  m->autocast_bf16 = false;
  std::vector<std::vector<int>> prompts = {{1, 5, 6}, {1, 9}}, completions = {{7, 8, 9, 2}, {10, 11}};
  auto lp32 = completion_logprobs(m, prompts, completions, PromptPass::kShared).token_logprobs.detach();
  m->autocast_bf16 = true;
  auto lp16 = completion_logprobs(m, prompts, completions, PromptPass::kShared);
  EXPECT_EQ(lp16.token_logprobs.scalar_type(), at::kFloat);
  const double lp_diff = (lp16.token_logprobs.detach() - lp32).abs().max().item<double>();
  EXPECT_GT(lp_diff, 0.0) << "completion_logprobs ignored --precision bf16";
  EXPECT_LT(lp_diff, 0.1);
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  // The process-wide default applies to models built afterwards only.
  set_default_autocast_bf16(true);
  CausalLM n(tiny_config());
  set_default_autocast_bf16(false);
  EXPECT_TRUE(n->autocast_bf16);
  EXPECT_FALSE(CausalLM(tiny_config())->autocast_bf16);
}

// Batch-1 decoding with 2+ threads runs our row-parallel GEMV (model/gemv.h): the same products as at::mv up
// to float rounding, on shapes with and without whole SIMD blocks and with a bias; and a model decodes the
// same greedy tokens with 2 threads as with 1 (which keeps OpenBLAS's sgemv).
TEST(GemvTest, RowParallelGemvMatchesMvAndDecodingMatchesOneThread) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  torch::manual_seed(3);
  for (const auto& [rows, cols] :
       std::vector<std::pair<int64_t, int64_t>>{{300, 256}, {257, 1003}, {64, 7}}) {
    const auto W = torch::randn({rows, cols}), x = torch::randn({cols}), b = torch::randn({rows});
    const auto ours = gemv_rows_parallel(W, x, b), ref = at::addmv(b, W, x);
    EXPECT_TRUE(torch::allclose(ours, ref, 1e-4, 1e-4))
        << rows << "x" << cols << " max diff " << (ours - ref).abs().max().item<float>();
    EXPECT_TRUE(torch::allclose(gemv_rows_parallel(W, x), at::mv(W, x), 1e-4, 1e-4));
  }
  EXPECT_THROW(gemv_rows_parallel(torch::randn({4, 5}), torch::randn({6})), handoff::Error);
  EXPECT_TRUE(use_parallel_gemv(torch::zeros({512, 512})));
  EXPECT_FALSE(use_parallel_gemv(torch::zeros({8, 8})));  // too small to split
  // The rows really are split: two threads run the blocks (a file built without OpenMP ran them all on one).
  EXPECT_EQ(gemv_worker_threads(), 2);
  std::vector<std::pair<int64_t, int64_t>> blocks;
  std::mutex mu;
  for_row_blocks(100, [&](int64_t b, int64_t e) {  // 7 blocks of 16: 64 rows + 36
    std::lock_guard<std::mutex> lock(mu);
    blocks.emplace_back(b, e);
  });
  std::sort(blocks.begin(), blocks.end());
  EXPECT_EQ(blocks, (std::vector<std::pair<int64_t, int64_t>>{{0, 64}, {64, 100}}));
  ModelConfig c;
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  torch::manual_seed(4);
  CausalLM m(c);
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = 24;
  const auto two = generate(m, {{1, 20, 30, 40}}, o, {1}).tokens;
  at::set_num_threads(1);
  EXPECT_FALSE(use_parallel_gemv(torch::zeros({512, 512})));
  EXPECT_EQ(gemv_worker_threads(), 1);
  EXPECT_EQ(generate(m, {{1, 20, 30, 40}}, o, {1}).tokens, two);
  at::set_num_threads(before);
}

// `--weights bf16` (CausalLMImpl::store_weights_bf16): the bf16 GEMV equals fp32 math on the widened
// weights; a model decoding one row at a time (the GEMV) and a whole prefix at once (weights widened per
// call) give the same logits; and both stay close to the fp32 model they were rounded from, tied head or not.
TEST(ModelTest, Bf16WeightsDecodeAsTheirWidenedFp32Does) {
  torch::manual_seed(11);
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{300, 256}, {257, 1003}, {5, 7}}) {
    const auto W = torch::randn({rows, cols}).to(at::kBFloat16), x = torch::randn({cols}),
               b = torch::randn({rows});
    const auto ours = gemv_rows_parallel(W, x, b);
    EXPECT_EQ(ours.scalar_type(), at::kFloat);
    EXPECT_TRUE(torch::allclose(ours, at::addmv(b, W.to(at::kFloat), x), 1e-4, 1e-4)) << rows << "x" << cols;
  }
  for (const std::string type : {"llama", "qwen2"}) {  // tied and untied LM head
    CausalLM m(tiny_config(type));
    m->eval();
    c10::InferenceMode guard;
    auto ids = torch::randint(4, 50, {1, 10}, at::kLong);
    auto pos = at::arange(10, at::kLong).unsqueeze(0);
    const at::Tensor fp32 = m->forward(ids, pos);
    m->store_weights_bf16();
    m->store_weights_bf16();  // idempotent
    EXPECT_EQ(m->model->layers->ptr(0)->as<DecoderLayerImpl>()->mlp->up_proj->weight.scalar_type(),
              at::kBFloat16);
    EXPECT_EQ(m->model->embed_tokens->weight.scalar_type(), at::kFloat);  // the lookup stays fp32
    const at::Tensor whole = m->forward(ids, pos);                        // 10 rows: widened weights
    KVCache cache = m->make_cache(1, 10);
    at::Tensor last;
    for (int64_t t = 0; t < 10; ++t)  // one row at a time: the bf16 GEMV
      last = m->forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), {}, &cache);
    EXPECT_TRUE(torch::allclose(last.select(1, 0), whole.select(1, 9), 1e-4, 1e-4)) << type;
    const at::Tensor three = m->forward(ids.narrow(1, 0, 3), pos.narrow(1, 0, 3));  // ≤ 4 rows: GEMV per row
    EXPECT_TRUE(torch::allclose(three, whole.narrow(1, 0, 3), 1e-4, 1e-4)) << type;
    const double diff = (whole - fp32).abs().max().item<double>(), scale = fp32.abs().max().item<double>();
    EXPECT_GT(diff, 0.0) << type;
    EXPECT_LT(diff, 0.05 * scale) << type;
    EXPECT_GE((whole.argmax(-1) == fp32.argmax(-1)).to(at::kFloat).mean().item<double>(), 0.9) << type;
  }
}

// `--weights int8` (CausalLMImpl::store_weights_int8): per-row int8 within half a step of W; the int8 GEMV
// equals fp32 math on the dequantized weights; row-at-a-time and whole-prefix decoding agree; the model stays
// close to its fp32 self; formats do not mix; and the flag refuses what it does not know.
TEST(ModelTest, Int8WeightsDecodeAsTheirDequantizedFp32Does) {
  torch::manual_seed(12);
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{{300, 256}, {257, 1003}, {5, 7}}) {
    auto W = torch::randn({rows, cols}), x = torch::randn({cols}), b = torch::randn({rows});
    W[1].zero_();  // an all-zero row quantizes to zeros, not NaN
    const auto [q, scale] = quantize_rows_int8(W);
    ASSERT_EQ(q.scalar_type(), at::kChar);
    const auto deq = q.to(at::kFloat) * scale.unsqueeze(1);
    EXPECT_LE((deq - W).abs().max().item<double>(), 0.5 * scale.max().item<double>() + 1e-6);
    EXPECT_EQ(q.abs().max().item<int>(), 127);
    EXPECT_TRUE(torch::allclose(gemv_rows_parallel(q, x, b, scale), at::addmv(b, deq, x), 1e-4, 1e-4))
        << rows << "x" << cols;
    EXPECT_THROW(gemv_rows_parallel(q, x, b), handoff::Error);  // int8 without its scales
  }
  for (const std::string type : {"llama", "qwen2"}) {  // tied and untied LM head
    CausalLM m(tiny_config(type));
    m->eval();
    c10::InferenceMode guard;
    auto ids = torch::randint(4, 50, {1, 10}, at::kLong);
    auto pos = at::arange(10, at::kLong).unsqueeze(0);
    const at::Tensor fp32 = m->forward(ids, pos);
    m->store_weights_int8();
    m->store_weights_int8();  // idempotent
    EXPECT_THROW(m->store_weights_bf16(), handoff::Error);
    EXPECT_EQ(m->model->layers->ptr(0)->as<DecoderLayerImpl>()->mlp->up_proj->weight.scalar_type(),
              at::kChar);
    const at::Tensor whole = m->forward(ids, pos);  // 10 rows: dequantized weights
    KVCache cache = m->make_cache(1, 10);
    at::Tensor last;
    for (int64_t t = 0; t < 10; ++t) last = m->forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), {}, &cache);
    EXPECT_TRUE(torch::allclose(last.select(1, 0), whole.select(1, 9), 1e-4, 1e-4)) << type;
    const at::Tensor three = m->forward(ids.narrow(1, 0, 3), pos.narrow(1, 0, 3));  // ≤ 4 rows: GEMV per row
    EXPECT_TRUE(torch::allclose(three, whole.narrow(1, 0, 3), 1e-4, 1e-4)) << type;
    const double diff = (whole - fp32).abs().max().item<double>(), scale = fp32.abs().max().item<double>();
    EXPECT_GT(diff, 0.0) << type;
    EXPECT_LT(diff, 0.05 * scale) << type;
    EXPECT_GE((whole.argmax(-1) == fp32.argmax(-1)).to(at::kFloat).mean().item<double>(), 0.9) << type;
  }
  CausalLM bf(tiny_config("llama"));
  bf->store_weights_bf16();
  EXPECT_THROW(bf->store_weights_int8(), handoff::Error);
}

// Data threads (runtime/data_threads.h): gradients added in item order give one thread's bytes at any thread
// count, a parameter no loss reaches keeps no gradient, a worker's error reaches the caller; items dealt by
// cost.
TEST(DataThreadsTest, GradientsInItemOrderEqualOneThreadsBitForBit) {
  EXPECT_EQ(deal_by_cost({5, 1, 4, 2, 3}, 2), (std::vector<std::vector<size_t>>{{1, 4, 0}, {3, 2}}));
  EXPECT_EQ(deal_by_cost({7}, 3), (std::vector<std::vector<size_t>>{{0}, {}, {}}));
  torch::manual_seed(5);
  std::vector<at::Tensor> xs;
  for (int k = 0; k < 7; ++k) xs.push_back(torch::randn({64}));
  const auto w0 = torch::randn({64});
  auto grads = [&](int threads) {
    auto a = w0.clone().requires_grad_(), b = torch::ones({64}).requires_grad_(),
         unused = torch::zeros({2}).requires_grad_();
    const double total = backward_in_order(
        xs.size(), threads,
        [&](size_t k) { return (a * xs[k]).sum() * 0.1 + (b * xs[k]).pow(2).sum() / (k + 1.0); },
        {a, b, unused});
    EXPECT_FALSE(unused.grad().defined());
    return std::make_tuple(total, a.grad().clone(), b.grad().clone());
  };
  const auto [t1, a1, b1] = grads(1);
  for (int threads : {2, 3, 16}) {
    const auto [t, a, b] = grads(threads);
    EXPECT_EQ(t, t1) << threads;
    EXPECT_TRUE(torch::equal(a, a1)) << threads;
    EXPECT_TRUE(torch::equal(b, b1)) << threads;
  }
  EXPECT_TRUE(torch::allclose(a1, 0.1 * torch::stack(xs).sum(0), 1e-5, 1e-5));
  auto p = torch::ones({3}).requires_grad_();
  for (int threads : {1, 2})
    EXPECT_THROW(backward_in_order(4, threads,
                                   [&](size_t k) -> at::Tensor {
                                     if (k == 1) throw handoff::Error("item 1 failed");
                                     return p.sum();
                                   },
                                   {p}),
                 handoff::Error);
}

// The sampler's one-pass pick (decode_steps.h) against pick_next and token_logprobs on the same logits and
// draws: the same tokens (greedy with ties: the first largest), log π within float rounding; what it does
// not take (top-p, banned ids, the boost, another dtype) left to them.
TEST(SamplerTest, OnePassPickMatchesPickNextAndItsLogprobs) {
  torch::manual_seed(12);
  auto logits = at::randn({64, 50}) * 3;
  logits[5].fill_(1.0);  // every token tied: greedy takes token 0
  for (double temperature : {0.0, 0.7, 1.0, 1.6}) {
    SamplingOptions o;
    o.temperature = temperature;
    ASSERT_TRUE(pick_in_one_pass_applies(logits, o));
    std::vector<std::mt19937_64> a, b;
    for (int i = 0; i < 64; ++i) {
      a.emplace_back(100 + i);
      b.emplace_back(100 + i);
    }
    std::vector<std::mt19937_64*> pa, pb;
    for (int i = 0; i < 64; ++i) {
      pa.push_back(&a[i]);
      pb.push_back(&b[i]);
    }
    std::vector<int64_t> ids;
    std::vector<float> lps;
    pick_in_one_pass(logits, o, pa, ids, lps);
    const auto want = pick_next(logits, o, pb);
    const auto want_lp = token_logprobs(logits, want);
    for (int i = 0; i < 64; ++i) {
      EXPECT_EQ(ids[i], want[i].item<int64_t>()) << "row " << i << " T " << temperature;
      EXPECT_NEAR(lps[i], want_lp[i].item<float>(), 1e-5) << "row " << i << " T " << temperature;
    }
    if (temperature == 0.0) {
      EXPECT_EQ(ids[5], 0);
    }
  }
  SamplingOptions o;
  o.top_p = 0.9;
  EXPECT_FALSE(pick_in_one_pass_applies(logits, o));
  o = SamplingOptions{};
  o.banned_ids = {3};
  EXPECT_FALSE(pick_in_one_pass_applies(logits, o));
  o = SamplingOptions{};
  o.boost_token = 2;
  EXPECT_FALSE(pick_in_one_pass_applies(logits, o));
  EXPECT_FALSE(pick_in_one_pass_applies(logits.to(at::kDouble), SamplingOptions{}));
}
