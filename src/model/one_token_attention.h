#pragma once
// Attention of one query token per row over a KV cache, in one pass per (row, head) with no temporaries.
//
// Why our own kernel: libtorch 1.13 has no fused CPU attention. As ATen ops, a one-token query either runs a
// batched matmul — one small GEMM per (row, head), which ATen without MKL selects, checks and dispatches
// slice by slice — or broadcast multiply-sums (AttentionImpl::attend_one_token), which write and read back
// two temporaries of B·heads·S·hd floats per layer. Here each (row, head) reads its query, keys and values
// once; where the CPU has AVX2 a copy of the kernel reduces eight keys' dots together, takes their softmax
// exponentials eight at a time (a polynomial in place of libm's expf) and sums the weighted values in
// registers, with the baseline copy's bits. bench/bench_one_token_attention measures the three forms: on one
// thread the kernel is 2.7-3.7x the multiply-sums on RL rollouts' shapes (256 rows, heads of 16, 48-160 keys)
// and 4.2-5.3x at a 0.5B model's heads of 64 over 512 keys, so the decoder uses it at every head size it has
// a copy for (docs/results/2026-12-05-attention-kernel-avx2/).
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace handoff {

// q [B, H, 1, hd]; k, v [B, KV, S, hd]; bias additive, [B or 1, 1, 1, S or 1]; fp32 on the CPU, the last dim
// of q, k and v contiguous (views into a KV cache are fine). Query head h reads key/value head h / (H / KV).
// Returns [B, 1, H · hd]. A key whose bias is at or below -1e29 (the decoder's mask, -1e30) is skipped — its
// softmax weight would be exactly 0 — unless every key is masked (then all count, as a softmax over equal
// scores would).
// `portable`: the build's baseline instructions even where the CPU has AVX2 — the same bits (tests).
at::Tensor one_token_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& bias, bool portable = false);

// Rows that continue a prompt shared with other rows (a GAPG group's G samples, batched sampling with a
// SharedPrefix, kv_cache.h): query row b attends over its prompt's keys prefix_k/v[rows[b]] ([D, KV, P, hd],
// contiguous; masked where prefix_bias [D, 1, 1, P] is at or below -1e29) followed by its own k/v[b] ([B, KV,
// S, hd], every key visible, S ≥ 1). The same bits as one_token_attention over the two concatenated, without
// a copy of the prompt's keys in every row's cache: each prompt's keys are read by its rows in turn, from
// the CPU's caches rather than memory (the decoding steps of a rollout were bound by reading the KV cache).
at::Tensor one_token_attention_prefixed(const at::Tensor& q, const at::Tensor& prefix_k,
                                        const at::Tensor& prefix_v, const at::Tensor& prefix_bias,
                                        const std::vector<int64_t>& rows, const at::Tensor& k,
                                        const at::Tensor& v, bool portable = false);

// The softmax's exponentials: scores[s] ← e^(scores[s] − top) for scores ≤ top (Cephes' polynomial, within 2
// ulp; 0 below e^-87.3), returning their sum; `portable` as above, with the same bits.
float exp_shifted(float* scores, int64_t n, float top, bool portable = false);

// Whether one_token_attention takes these tensors: fp32 CPU, head size 16, 32, 64 or 128, the shapes above.
bool one_token_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& bias);

}  // namespace handoff
