// One query token over a KV cache (model/one_token_attention.h): the kernel against the float64 softmax
// attention it replaces, on grouped heads, masked keys, broadcast masks and cache views; bad shapes refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "common/error.h"
#include "model/one_token_attention.h"

using namespace handoff;

namespace {

at::Tensor reference(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  const int64_t B = q.size(0), H = q.size(1), KV = k.size(1), hd = q.size(3);
  auto qd = q.to(at::kDouble).reshape({B, KV, H / KV, 1, hd});
  auto s = at::matmul(qd, k.to(at::kDouble).unsqueeze(2).transpose(-1, -2)) / std::sqrt(double(hd));
  auto p = at::softmax(s + bias.to(at::kDouble).unsqueeze(1), -1);
  return at::matmul(p, v.to(at::kDouble).unsqueeze(2)).reshape({B, 1, H * hd});
}

}  // namespace

TEST(OneTokenAttentionTest, MatchesSoftmaxAttentionOnGroupedHeadsMasksAndCacheViews) {
  at::manual_seed(11);
  struct Case {
    int64_t B, H, KV, hd, S;
    bool shared_mask;
  };
  for (const Case& c : {Case{5, 4, 4, 16, 9, false}, Case{3, 14, 2, 64, 40, false},
                        Case{2, 8, 2, 32, 7, true}, Case{4, 2, 1, 128, 3, false}}) {
    const int64_t capacity = c.S + 6;  // the filled prefix of a larger cache, as the decoder reads it
    auto q = at::randn({c.B, c.H, 1, c.hd});
    auto k = at::randn({c.B, c.KV, capacity, c.hd}).narrow(2, 0, c.S);
    auto v = at::randn({c.B, c.KV, capacity, c.hd}).narrow(2, 0, c.S);
    auto valid = at::rand({c.shared_mask ? 1 : c.B, 1, 1, c.S}) > 0.3;
    valid.select(3, 0).fill_(true);
    auto bias = at::zeros(valid.sizes()).masked_fill(valid.logical_not(), -1e30);
    ASSERT_TRUE(one_token_attention_applies(q, k, v, bias)) << "hd " << c.hd;
    const auto got = one_token_attention(q, k, v, bias);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{c.B, 1, c.H * c.hd}));
    EXPECT_LT((got.to(at::kDouble) - reference(q, k, v, bias)).abs().max().item<double>(), 1e-5)
        << "hd " << c.hd;
  }
}

TEST(OneTokenAttentionTest, EveryKeyMaskedAveragesTheValuesLikeASoftmaxOverEqualScores) {
  at::manual_seed(12);
  auto q = at::randn({1, 2, 1, 16}), k = at::randn({1, 2, 5, 16}), v = at::randn({1, 2, 5, 16});
  auto bias = at::full({1, 1, 1, 5}, -1e30);
  const auto got = one_token_attention(q, k, v, bias).view({2, 16});
  EXPECT_LT((got - v[0].mean(1)).abs().max().item<double>(), 1e-6);
}

TEST(OneTokenAttentionTest, ShapesItDoesNotTakeAreRefused) {
  auto k = at::randn({2, 2, 4, 16}), v = at::randn({2, 2, 4, 16}), bias = at::zeros({2, 1, 1, 4});
  EXPECT_FALSE(
      one_token_attention_applies(at::randn({2, 2, 3, 16}), k, v, at::zeros({2, 1, 3, 4})));  // 3 queries
  EXPECT_FALSE(one_token_attention_applies(at::randn({2, 2, 1, 8}), at::randn({2, 2, 4, 8}),
                                           at::randn({2, 2, 4, 8}), bias));         // heads of 8
  EXPECT_FALSE(one_token_attention_applies(at::randn({2, 3, 1, 16}), k, v, bias));  // 3 heads over 2
  EXPECT_FALSE(one_token_attention_applies(at::randn({2, 2, 1, 16}).to(at::kBFloat16), k, v, bias));
  EXPECT_FALSE(one_token_attention_applies(at::randn({2, 2, 1, 16}), k, v, at::zeros({3, 1, 1, 4})));
  EXPECT_THROW(one_token_attention(at::randn({2, 2, 3, 16}), k, v, at::zeros({2, 1, 3, 4})), Error);
}
