#pragma once
// One decoding step of a whole batch of rows (one new token each, over a KV cache) in a few GEMMs and fused
// loops, for fp32 weights on the CPU: RL rollouts, evaluation and batched sampling (model/sampler.cpp).
//
// Why: at the decoding sizes of RL post-training (a 64-wide model, 100-300 rows) the decoder's ATen ops are
// tiny and many — ~250 per step for two layers (the norms as pow/mean/add/rsqrt/mul, RoPE as narrow/neg/
// cat/mul/add, the cache writes, the mask built anew) — and their dispatch, not their arithmetic, was most
// of a rollout (issue 18; ATen profiler of bench_gapg_profile: 545 op calls per token step with sampling).
// Here a layer is four GEMMs (q/k/v packed into one weight, gate/up into another, the output and down
// projections added into the residual in place), the one-token attention kernel, and loops for the norms,
// RoPE from a table, the cache write and the SwiGLU product. The values agree with CausalLM::forward to
// float rounding (FusedDecodeTest), not bit for bit: the norms' sums and RoPE's angles are taken in another
// order.
#include <ATen/Tensor.h>

#include <vector>

#include "model/decoder.h"

namespace handoff {

class FusedDecoder {
 public:
  // Whether `model` decodes this way: fp32 weights (not --weights bf16/int8) on the CPU, no bf16 autocast,
  // a head size the one-token attention kernel has a copy for.
  static bool applies(const CausalLM& model);

  // Takes the model's weights for decoding positions [0, positions) — q/k/v and gate/up packed into one copy
  // each where they total at most `pack_bytes` (the presets' models), views of them otherwise: the model's
  // weights must not change while this lives (sampling runs under InferenceMode). Throws when
  // !applies(model).
  static constexpr int64_t kPackBytes = int64_t{32} << 20;
  FusedDecoder(CausalLM& model, int64_t positions, int64_t pack_bytes = kPackBytes);

  // ids, positions: [B] int64; key_valid: [B, cache.length + 1] bool (false: a padding key), or undefined
  // when every key is valid. Writes each layer's key and value at column cache.length, advances it, and
  // returns the logits [B, V]. With a `prefix`, each row attends over its prompt's shared columns first and
  // then over its cache (the prompt's columns are not in it). The cache's tensors may be any permutation of
  // [B, KV, capacity, hd] with hd contiguous (the sampler's are position-major, see sampler.cpp). B ≥ 1 rows
  // of the cache's batch; a position outside [0, positions) or an id outside its vocabulary is an Error.
  at::Tensor step(const at::Tensor& ids, const at::Tensor& positions, const at::Tensor& key_valid,
                  KVCache& cache, const SharedPrefix* prefix = nullptr) const;

 private:
  struct Layer {
    // Weights as [in, out] views of the packed [out, in] matrices: GEMMs take the views, one row (B = 1)
    // takes a GEMV on the matrix, which streams it once where a one-row GEMM would pack all of it.
    std::vector<at::Tensor> qkv_t, qkv_bias;  // q, k, v: packed [D, (H + 2 KV) hd] or one each; biases
    std::vector<at::Tensor> gate_up_t;        // gate, up: packed [D, 2 I] or one each; undefined biases
    at::Tensor o_t, down_t;
    const float *in_norm, *post_norm, *q_norm = nullptr, *k_norm = nullptr;
  };
  CausalLM model_;
  std::vector<Layer> layers_;
  at::Tensor embed_, lm_t_, final_norm_;
  std::vector<float> cos_, sin_;  // [positions_, hd / 2]
  int64_t positions_ = 0;
  int64_t D_, H_, KV_, hd_, I_, V_;
  float eps_;
};

}  // namespace handoff
