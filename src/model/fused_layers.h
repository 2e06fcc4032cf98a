#pragma once
// The decoder's RMSNorm and RoPE as one autograd node each, forward and backward in one pass over their
// rows, for the RL policy update (issue 18).
//
// Why: as ATen ops an RMSNorm is pow, mean, add, rsqrt and two broadcast multiplies, and RoPE is two
// narrows, a negation, a concatenation, two multiplies and an add — each a pass over the activations and a
// temporary, and about twice as many again in their backward. At the update's sizes (≈ 1,400 tokens a
// micro-batch, a 64-wide model) those passes and their allocations were a quarter of the update next to
// its GEMMs (perf of bench_policy_update: 27 % of its samples in libtorch, the hottest a float multiply).
// Here a norm reads its input once and writes once (the backward: one pass for the input's gradient and the
// weight's), RoPE the same; the values equal the ATen forms' to float rounding (FusedLayersTest).
#include <ATen/Tensor.h>

namespace handoff {

// x [..., n] / sqrt(mean(x², -1) + eps) · w [n]; fp32 on the CPU. Gradients for x and w.
at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);

// HF's rotate-half RoPE: x [B, H, T, hd] (any strides), cos and sin [B or 1, 1, T, hd] with equal halves
// (Rope::cos_sin); fp32 on the CPU. Returns x·cos + rotate_half(x)·sin, contiguous [B, H, T, hd]; the
// gradient for x (cos and sin are constants).
at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

// Whether these take fp32 CPU tensors of these shapes.
bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& w);
bool fused_rope_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace handoff
