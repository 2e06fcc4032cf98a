#pragma once
// Attention of T query tokens per row over S keys with an additive bias, forward and backward in one pass per
// (row, head), for the RL policy update (issue 18).
//
// Why: as ATen ops the update's attention at the tiny presets' heads of 16 is two batched matmuls, whose CPU
// form without MKL runs one small GEMM per (row, head) with K or N = 16, a masked softmax, and the four
// batched matmuls and softmax of their backward. Here each (row, head) reads its queries, keys and values
// once per pass with the eight-lane building blocks of the one-token kernel (model/attention_lanes.h: AVX2
// where the CPU has it, the same bits without), and the backward uses the saved probabilities instead of
// recomputing them. On the quick preset's GAPG step the update is 6 % faster at one thread (0.150 → 0.141 s)
// and within noise at two data threads (docs/results/2026-12-05-attention-kernel-avx2/): the update's time
// is mostly its linear layers' GEMMs and ATen's elementwise work.
#include <ATen/Tensor.h>

namespace handoff {

// q [B, H, T, hd]; k, v [B, KV, S, hd]; bias additive, [B or 1, 1, T, S]; fp32 on the CPU, hd in {16, 32, 64,
// 128}, H a multiple of KV (query head h reads key/value head h / (H / KV)). Returns [B, T, H · hd], with the
// gradients of q, k and v (not of the bias) when they require them. A key whose bias is at or below -1e29
// (the decoder's mask) has weight exactly 0 unless every key of its query is masked; then all count, as a
// softmax over equal scores would.
at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& bias);

// Whether fused_attention takes these tensors.
bool fused_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& bias);

}  // namespace handoff
