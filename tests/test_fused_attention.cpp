// The policy update's attention (model/fused_attention.h): forward and gradients against float64 softmax
// attention on grouped heads, padding and causal masks, queries over a longer key range (the update's shared
// prompt pass) and a query whose keys are all masked; the decoder's log-probabilities and parameter gradients
// with it against ATen's ops; bad shapes refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "common/error.h"
#include "model/decoder.h"
#include "model/fused_attention.h"
#include "model/fused_update_scope.h"
#include "model/logprobs.h"

using namespace handoff;

namespace {

// The decoder's ATen form, in float64: [B, T, H·hd].
at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), KV = k.size(1), hd = q.size(3);
  auto s =
      at::matmul(q.reshape({B, KV, H / KV, T, hd}), k.unsqueeze(2).transpose(-1, -2)) / std::sqrt(double(hd));
  auto p = at::softmax(s + bias.unsqueeze(1), -1);
  return at::matmul(p, v.unsqueeze(2)).reshape({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / (1.0 + want.abs().max())).item<double>();
}

}  // namespace

TEST(FusedAttentionTest, ForwardAndGradientsMatchFloat64Attention) {
  at::manual_seed(21);
  struct Case {
    int64_t B, H, KV, hd, T, S;
    bool shared_bias;
  };
  for (const Case& c : {Case{3, 4, 4, 16, 9, 9, false}, Case{2, 4, 2, 16, 6, 11, false},
                        Case{2, 14, 2, 64, 5, 12, true}, Case{2, 2, 1, 32, 7, 7, false}}) {
    // Causal over the last T of S positions, some keys invalid (padding), one query of row 0 fully masked.
    auto allowed = at::arange(c.S).unsqueeze(0) <= (at::arange(c.T) + (c.S - c.T)).unsqueeze(1);  // [T, S]
    auto valid = at::rand({c.shared_bias ? 1 : c.B, 1, 1, c.S}) > 0.25;
    auto mask = allowed.view({1, 1, c.T, c.S}) & valid;
    if (!c.shared_bias) mask[0][0][0].fill_(false);
    auto bias = at::zeros(mask.sizes()).masked_fill(mask.logical_not(), -1e30);
    auto q = at::randn({c.B, c.T, c.H, c.hd}).transpose(1, 2).requires_grad_(false);  // a strided view
    auto k = at::randn({c.B, c.KV, c.S + 3, c.hd}).narrow(2, 0, c.S);                 // a cache's prefix
    auto v = at::randn({c.B, c.KV, c.S, c.hd});
    auto qg = q.detach().clone().requires_grad_(true), kg = k.detach().clone().requires_grad_(true);
    auto vg = v.detach().clone().requires_grad_(true);
    ASSERT_TRUE(fused_attention_applies(qg, kg, vg, bias)) << "hd " << c.hd;
    auto out = fused_attention(qg, kg, vg, bias);
    ASSERT_EQ(out.sizes(), (std::vector<int64_t>{c.B, c.T, c.H * c.hd}));
    auto w = at::randn(out.sizes());
    (out * w).sum().backward();

    auto qd = q.to(at::kDouble).requires_grad_(true), kd = k.to(at::kDouble).requires_grad_(true);
    auto vd = v.to(at::kDouble).requires_grad_(true);
    auto want = reference(qd, kd, vd, bias.to(at::kDouble));
    (want * w.to(at::kDouble)).sum().backward();
    EXPECT_LT(max_rel(out.detach(), want.detach()), 1e-5) << "hd " << c.hd;
    EXPECT_LT(max_rel(qg.grad(), qd.grad()), 1e-5) << "dq, hd " << c.hd;
    EXPECT_LT(max_rel(kg.grad(), kd.grad()), 1e-5) << "dk, hd " << c.hd;
    EXPECT_LT(max_rel(vg.grad(), vd.grad()), 1e-5) << "dv, hd " << c.hd;
    EXPECT_GT(qg.grad().abs().sum().item<double>(), 0.0);
  }
}

// The decoder under a FusedUpdateScope (the policy update) against its ATen ops: the same
// log-probabilities and parameter gradients to float rounding, with one sequence per row and with the shared
// prompt pass.
TEST(FusedAttentionTest, TheDecoderGivesTheLogprobsAndGradientsOfAtensOps) {
  torch::manual_seed(22);
  ModelConfig c;
  c.vocab_size = 40;
  c.hidden_size = 64;  // heads of 16
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  CausalLM m(c);
  const std::vector<std::vector<int>> prompts = {{1, 5, 6, 7}, {1, 5, 6, 7}, {1, 9}, {1, 9}, {1, 3, 4}};
  const std::vector<std::vector<int>> completions = {{8, 9, 10}, {11}, {12, 13, 14, 15, 16}, {17, 2}, {18}};
  auto weights = torch::randn({5, 5});
  for (bool share : {true, false}) {
    std::vector<at::Tensor> values;
    std::vector<std::vector<at::Tensor>> grads;
    for (bool fused : {false, true}) {
      EXPECT_FALSE(FusedUpdateScope::active());
      std::optional<FusedUpdateScope> scope;
      if (fused) scope.emplace();
      EXPECT_EQ(FusedUpdateScope::active(), fused);
      for (auto& p : m->parameters()) p.mutable_grad() = at::Tensor();
      auto lp =
          completion_logprobs(m, prompts, completions, share ? PromptPass::kShared : PromptPass::kPerRow);
      (lp.token_logprobs * weights.narrow(1, 0, lp.token_logprobs.size(1))).sum().backward();
      values.push_back(lp.token_logprobs.detach());
      grads.emplace_back();
      for (auto& p : m->parameters()) grads.back().push_back(p.grad().clone());
    }
    EXPECT_LT((values[0] - values[1]).abs().max().item<double>(), 1e-5) << "share " << share;
    bool same_bits = true;  // the scope does route the attention elsewhere: its rounding differs
    for (size_t i = 0; i < grads[0].size(); ++i) same_bits = same_bits && grads[0][i].equal(grads[1][i]);
    EXPECT_FALSE(same_bits) << "share " << share;
    for (size_t i = 0; i < grads[0].size(); ++i)
      EXPECT_LT((grads[0][i] - grads[1][i]).abs().max().item<double>(),
                1e-5 * (1 + grads[0][i].abs().max().item<double>()))
          << "share " << share << ", parameter " << i;
  }
}

TEST(FusedAttentionTest, ShapesItDoesNotTakeAreRefused) {
  auto q = at::randn({2, 2, 3, 16}), k = at::randn({2, 2, 4, 16}), v = at::randn({2, 2, 4, 16});
  auto bias = at::zeros({2, 1, 3, 4});
  EXPECT_TRUE(fused_attention_applies(q, k, v, bias));
  EXPECT_FALSE(fused_attention_applies(at::randn({2, 2, 3, 8}), at::randn({2, 2, 4, 8}),
                                       at::randn({2, 2, 4, 8}),
                                       bias));                                  // heads of 8
  EXPECT_FALSE(fused_attention_applies(at::randn({2, 3, 3, 16}), k, v, bias));  // 3 heads over 2
  EXPECT_FALSE(fused_attention_applies(q.to(at::kBFloat16), k, v, bias));       // bf16
  EXPECT_FALSE(fused_attention_applies(q, k, v, at::zeros({3, 1, 3, 4})));      // 3 bias rows for 2
  EXPECT_FALSE(fused_attention_applies(q, k, at::randn({2, 2, 5, 16}), bias));  // v longer than k
  EXPECT_THROW(fused_attention(q, k, v, at::zeros({2, 1, 3, 5})), Error);
}
