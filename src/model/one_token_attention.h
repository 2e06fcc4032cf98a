#pragma once
// Attention of one query token per row over a KV cache, in one pass per (row, head) with no temporaries.
//
// Why our own kernel: libtorch 1.13 has no fused CPU attention. As ATen ops, a one-token query either runs a
// batched matmul — one small GEMM per (row, head), which ATen without MKL selects, checks and dispatches
// slice by slice — or broadcast multiply-sums (AttentionImpl::attend_one_token), which write and read back
// two temporaries of B·heads·S·hd floats per layer. Here each (row, head) reads its query, keys and values
// once. bench/bench_one_token_attention measures the three: the kernel pays at heads of 64 (real models: 2.0x
// the multiply-sums at one row and 2.2x at 16 rows over 512 keys, one thread) and not at the tiny presets'
// heads of 16 (0.9-1.1x on RL rollouts' shapes, where both read the whole cache once), so the decoder uses it
// from heads of 32 up (docs/results/2026-12-05-shared-prompt-pass/).
#include <ATen/Tensor.h>

namespace handoff {

// q [B, H, 1, hd]; k, v [B, KV, S, hd]; bias additive, [B or 1, 1, 1, S or 1]; fp32 on the CPU, the last dim
// of q, k and v contiguous (views into a KV cache are fine). Query head h reads key/value head h / (H / KV).
// Returns [B, 1, H · hd]. A key whose bias is at or below -1e29 (the decoder's mask, -1e30) is skipped — its
// softmax weight would be exactly 0 — unless every key is masked (then all count, as a softmax over equal
// scores would).
at::Tensor one_token_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& bias);

// Whether one_token_attention takes these tensors: fp32 CPU, head size 16, 32, 64 or 128, the shapes above.
bool one_token_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& bias);

}  // namespace handoff
