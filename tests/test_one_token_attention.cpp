// One query token over a KV cache (model/one_token_attention.h): the kernel against the float64 softmax
// attention it replaces, on grouped heads, masked keys, broadcast masks and cache views; bad shapes refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <vector>

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

// The softmax's exponentials: within 2 ulp of e^x over the range a softmax sees (x ≤ 0), exactly 1 at the
// maximum, 0 for masked (−inf) scores and below e^-87.3; and the sum is the sum of the values it wrote.
TEST(OneTokenAttentionTest, ExponentialsAreWithinTwoUlpAndZeroForMaskedScores) {
  std::vector<float> x;
  for (int i = 0; i <= 20000; ++i) x.push_back(-87.0f * static_cast<float>(i) / 20000.0f);
  x.push_back(-std::numeric_limits<float>::infinity());
  x.push_back(-90.0f);
  std::vector<float> e = x;
  const float total = exp_shifted(e.data(), static_cast<int64_t>(e.size()), 0.0f);
  double want_total = 0.0;
  for (size_t i = 0; i + 2 < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    const double ulp = std::nextafter(static_cast<float>(want), 1.0f) - static_cast<float>(want);
    ASSERT_LE(std::abs(e[i] - want), 2.0 * ulp) << "x = " << x[i];
    want_total += e[i];
  }
  EXPECT_EQ(e[0], 1.0f);
  EXPECT_EQ(e[e.size() - 2], 0.0f);
  EXPECT_EQ(e.back(), 0.0f);
  EXPECT_NEAR(total, want_total, 1e-5 * want_total);
  // A NaN score (a diverged model) is not a masked key: it stays NaN, in both forms and in the sum.
  for (bool portable : {false, true})
    for (size_t at : {3, 9}) {  // in an eight-key block and in the tail
      std::vector<float> with_nan(11, -1.0f);
      with_nan[at] = std::numeric_limits<float>::quiet_NaN();
      EXPECT_TRUE(std::isnan(exp_shifted(with_nan.data(), 11, 0.0f, portable))) << "portable " << portable;
      EXPECT_TRUE(std::isnan(with_nan[at]));
      EXPECT_FLOAT_EQ(with_nan[at == 3 ? 9 : 3], std::exp(-1.0f));
    }
}

// Where the CPU has AVX2 the kernel runs its eight-lane copy; the baseline copy must give the same bits, so a
// run is reproducible on CPUs with and without it (rollouts sample from these probabilities).
TEST(OneTokenAttentionTest, TheBaselineAndTheVectorFormsGiveTheSameBits) {
  at::manual_seed(13);
  for (int64_t n : {1, 7, 8, 37, 160}) {
    auto s = (at::randn({n}) * 6.0).contiguous();
    const float top = s.max().item<float>();
    auto a = s.clone(), b = s.clone();
    const float ta = exp_shifted(a.data_ptr<float>(), n, top, /*portable=*/false);
    const float tb = exp_shifted(b.data_ptr<float>(), n, top, /*portable=*/true);
    EXPECT_EQ(ta, tb) << "n " << n;
    EXPECT_TRUE(at::equal(a, b)) << "n " << n;
  }
  for (int64_t hd : {16, 64}) {
    auto q = at::randn({6, 4, 1, hd}), k = at::randn({6, 2, 50, hd}).narrow(2, 0, 41);
    auto v = at::randn({6, 2, 50, hd}).narrow(2, 0, 41);
    auto bias = at::zeros({6, 1, 1, 41}).masked_fill(at::rand({6, 1, 1, 41}) > 0.8, -1e30);
    EXPECT_TRUE(at::equal(one_token_attention(q, k, v, bias), one_token_attention(q, k, v, bias, true)))
        << "hd " << hd;
  }
}

// A shared prompt's columns read in place (the sampler's SharedPrefix) give the bits of the same attention
// over each row's copy of them, in both forms; rows of one prompt, rows of another, padding in the prompt.
TEST(OneTokenAttentionTest, ASharedPrefixGivesTheBitsOfCopiedColumns) {
  at::manual_seed(17);
  for (int64_t hd : {16, 32}) {
    const int64_t D = 2, B = 5, H = 4, KV = 2, P = 13, S = 6;
    const std::vector<int64_t> rows = {0, 0, 1, 1, 0};
    auto pk = at::randn({D, KV, P, hd}), pv = at::randn({D, KV, P, hd});
    auto pbias = at::zeros({D, 1, 1, P});
    pbias.narrow(3, 0, 3).select(0, 1).fill_(-1e30);  // prompt 1 is left-padded by three columns
    auto q = at::randn({B, H, 1, hd}), k = at::randn({B, KV, S + 4, hd}).narrow(2, 0, S);
    auto v = at::randn({B, KV, S + 4, hd}).narrow(2, 0, S);
    auto idx = at::tensor(rows);
    auto ck = at::cat({pk.index_select(0, idx), k}, 2), cv = at::cat({pv.index_select(0, idx), v}, 2);
    auto cbias = at::cat({pbias.index_select(0, idx), at::zeros({B, 1, 1, S})}, 3);
    for (bool portable : {false, true}) {
      auto want = one_token_attention(q, ck, cv, cbias, portable);
      EXPECT_TRUE(at::equal(one_token_attention_prefixed(q, pk, pv, pbias, rows, k, v, portable), want))
          << "hd " << hd << (portable ? " baseline" : " vector");
    }
    EXPECT_LT((one_token_attention_prefixed(q, pk, pv, pbias, rows, k, v) - reference(q, ck, cv, cbias))
                  .abs()
                  .max()
                  .item<double>(),
              1e-5);
  }
  auto q = at::randn({2, 2, 1, 16}), pk = at::randn({1, 2, 4, 16}), k = at::randn({2, 2, 3, 16});
  auto pbias = at::zeros({1, 1, 1, 4});
  EXPECT_THROW(one_token_attention_prefixed(q, pk, pk, pbias, {0, 1}, k, k), Error);  // no prompt 1
  EXPECT_THROW(one_token_attention_prefixed(q, pk, pk, pbias, {0}, k, k), Error);     // one index, two rows
  EXPECT_THROW(one_token_attention_prefixed(q, pk, pk, at::zeros({1, 1, 1, 3}), {0, 0}, k, k), Error);
  EXPECT_THROW(one_token_attention_prefixed(q, pk.narrow(3, 0, 8), pk.narrow(3, 0, 8), pbias, {0, 0}, k, k),
               Error);  // head sizes differ
}
