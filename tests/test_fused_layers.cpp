// The policy update's fused RMSNorm and RoPE (model/fused_layers.h): forward and gradients against float64
// forms, RoPE's forward equal to the decoder's ATen ops bit for bit on a strided view, bad shapes refused.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <vector>

#include "common/error.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/fused_layers.h"

using namespace handoff;

namespace {

double max_rel(const at::Tensor& got, const at::Tensor& want) {
  return ((got.to(at::kDouble) - want).abs().max() / (1.0 + want.abs().max())).item<double>();
}

}  // namespace

TEST(FusedLayersTest, RmsNormForwardAndGradientsMatchFloat64) {
  at::manual_seed(4);
  for (int64_t rows : {1, 7, 300}) {  // 300: several of the weight gradient's fixed-size chunks
    auto x = (at::randn({rows, 2, 48}) * 3).requires_grad_(true);
    auto w = (at::randn({48}) * 0.5 + 1).requires_grad_(true);
    auto y = fused_rms_norm(x, w, 1e-5);
    ASSERT_EQ(y.sizes(), x.sizes());
    auto g = at::randn(y.sizes());
    (y * g).sum().backward();
    auto xd = x.detach().to(at::kDouble).requires_grad_(true),
         wd = w.detach().to(at::kDouble).requires_grad_(true);
    auto want = xd * at::rsqrt(xd.pow(2).mean(-1, true) + 1e-5) * wd;
    (want * g.to(at::kDouble)).sum().backward();
    EXPECT_LT(max_rel(y.detach(), want.detach()), 1e-6) << rows;
    EXPECT_LT(max_rel(x.grad(), xd.grad()), 1e-5) << rows;
    EXPECT_LT(max_rel(w.grad(), wd.grad()), 1e-5) << rows;
  }
}

TEST(FusedLayersTest, RopeEqualsTheDecodersOpsAndItsGradientIsTheTranspose) {
  at::manual_seed(6);
  ModelConfig c;
  c.hidden_size = 64;
  c.num_attention_heads = 4;
  const Rope rope(c);
  const int64_t B = 3, T = 5, H = 4, hd = 16;
  auto positions = at::randint(0, 40, {B, T}, at::kLong);
  auto [cos, sin] = rope.cos_sin(positions);
  auto x = at::randn({B, T, H, hd}).transpose(1, 2);  // [B, H, T, hd], strided as the decoder's q
  auto xg = x.detach().requires_grad_(true);
  auto got = fused_rope(xg, cos, sin);
  EXPECT_TRUE(at::equal(got, rope.apply(x, cos, sin)));  // outside the update's scope: ATen's ops
  auto g = at::randn(got.sizes());
  (got * g).sum().backward();
  auto xd = x.to(at::kDouble).requires_grad_(true);
  auto half = hd / 2;
  auto rotated = at::cat({-xd.narrow(-1, half, half), xd.narrow(-1, 0, half)}, -1);
  auto want = xd * cos.to(at::kDouble) + rotated * sin.to(at::kDouble);
  (want * g.to(at::kDouble)).sum().backward();
  EXPECT_LT(max_rel(xg.grad(), xd.grad()), 1e-6);
  // One set of angles for every row (a batch of 1 broadcast), as the prompt pass of a single prompt.
  auto one = fused_rope(x, cos.narrow(0, 0, 1), sin.narrow(0, 0, 1));
  EXPECT_TRUE(at::equal(one, rope.apply(x, cos.narrow(0, 0, 1), sin.narrow(0, 0, 1))));
}

TEST(FusedLayersTest, BadShapesAreRefused) {
  EXPECT_THROW(fused_rms_norm(at::randn({2, 8}), at::randn({7}), 1e-5), Error);
  EXPECT_THROW(fused_rms_norm(at::randn({2, 8}).to(at::kDouble), at::randn({8}), 1e-5), Error);
  auto cs = at::randn({2, 1, 3, 16});
  EXPECT_THROW(fused_rope(at::randn({2, 4, 3, 15}), cs, cs), Error);  // odd head size
  EXPECT_THROW(fused_rope(at::randn({2, 4, 4, 16}), cs, cs), Error);  // T differs
  EXPECT_THROW(fused_rope(at::randn({3, 4, 3, 16}), cs, cs), Error);  // batch neither B nor 1
  EXPECT_THROW(fused_rope(at::randn({2, 4, 3, 16}), cs, at::randn({2, 1, 3, 8})), Error);
}
