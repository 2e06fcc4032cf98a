#pragma once
// Llama/Qwen2-style decoder, read top to bottom: embedding → N × (RMSNorm → attention with RoPE/GQA →
// residual, RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head. Parameter names follow Hugging Face
// (model.layers.N.self_attn.q_proj.weight, …) because the module tree mirrors theirs.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "model/config.h"
#include "model/kv_cache.h"

namespace handoff {

// libtorch 1.13 has no nn::RMSNorm.
struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Rotary position embedding tables (HF "rotate_half" convention), with Llama-3 frequency scaling.
struct Rope {
  Rope() = default;
  explicit Rope(const ModelConfig& c);
  // x: [B, H, T, hd]; positions: [B, T] int64.
  at::Tensor apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const;
  std::pair<at::Tensor, at::Tensor> cos_sin(const at::Tensor& positions) const;  // each [B, 1, T, hd]
  at::Tensor cos_table, sin_table;                                               // [max_pos, hd]
};

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const ModelConfig& c);
  // x: [B, T, D]; bias: additive mask broadcastable to [B, 1, T, S]; cache layer may be null (no cache).
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& bias, KVCache* cache, int64_t layer);
  // q: [B, n_heads, 1, hd]; k, v: [B, n_kv, S, hd]; bias [B, 1, 1, S] → [B, 1, n_heads · hd].
  at::Tensor attend_one_token(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              const at::Tensor& bias) const;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // Qwen3 only (ModelConfig::has_qk_norm)
  int64_t n_heads, n_kv, head_dim;
  const Rope* rope = nullptr;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const ModelConfig& c);
  at::Tensor forward(const at::Tensor& x);
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : torch::nn::Module {
  explicit DecoderLayerImpl(const ModelConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                     const at::Tensor& bias, KVCache* cache, int64_t layer);
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct BackboneImpl : torch::nn::Module {  // HF "model."
  explicit BackboneImpl(const ModelConfig& c, bool random_init = true);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

// The autocast_bf16 value of every CausalLM constructed afterwards in this process (`--precision bf16`).
void set_default_autocast_bf16(bool on);
bool default_autocast_bf16();

struct CausalLMImpl : torch::nn::Module {
  // random_init false: skip the N(0, 0.02) initialisation (and the embedding's own fill) because weights are
  // about to be loaded over it — at 0.5B parameters that fill is seconds of a load (bench/bench_load).
  explicit CausalLMImpl(const ModelConfig& c, bool random_init = true);

  // input_ids, positions: [B, T] int64. key_valid: [B, S] bool over all keys (cache + new), or undefined when
  // every key is valid. With a cache, new keys are appended at cache->length and the cache advances by T.
  // Returns logits [B, T, V].
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& positions,
                     const at::Tensor& key_valid = {}, KVCache* cache = nullptr);
  // Hidden states before the LM head (for classifiers on the device's representation).
  at::Tensor hidden(const at::Tensor& input_ids, const at::Tensor& positions,
                    const at::Tensor& key_valid = {}, KVCache* cache = nullptr);
  at::Tensor lm_weight() const;  // tied or untied LM head weight [V, D]
  // `--weights bf16` (inference only, never saved or trained): every linear layer's weight and the LM head
  // stored in bf16 — half the bytes batch-1 decoding reads — with fp32 activations and sums (gemv.h, one
  // GEMV per row up to 4 rows; more rows, as a prefill or a large decode batch, widen W to fp32 per call, so
  // bf16 pays at batch 1 and small batches, not for throughput). A tied head keeps its fp32 embedding for the
  // lookup and gets a bf16 copy for the logits. Idempotent.
  void store_weights_bf16();
  // `--weights int8` (the same terms): every linear weight and the LM head as per-row symmetric int8 with an
  // fp32 scale a row (gemv.h, quantize_rows_int8) — a quarter of fp32's bytes. A layer's scales are its
  // "weight_scale" buffer. Idempotent; not after store_weights_bf16 (and the reverse), which is an Error.
  void store_weights_int8();
  // zeroed false: the columns hold whatever the allocator gave until written — for callers that write every
  // column before they attend over it (batched sampling: the prompt's pass fills [0, P), step t column P +
  // t), sparing a fill of the whole cache (4 × 8 MB per quick-preset rollout). Per-row columns (write_cols)
  // need zeros: a row attends over columns other rows have not written yet, masked, and 0 · garbage may be
  // NaN.
  KVCache make_cache(int64_t batch, int64_t capacity, bool zeroed = true) const;
  at::Device device() const;

 private:
  at::Tensor forward_logits(const at::Tensor& input_ids, const at::Tensor& positions,
                            const at::Tensor& key_valid, KVCache* cache);

 public:
  ModelConfig config;
  // Mixed precision (runtime only, never saved): forward runs under bf16 autocast on the model's device
  // (matmuls in bf16; softmax, norms' reductions, exp/log stay fp32 by autocast's own op lists) and returns
  // fp32 logits, so log-softmax, sampling and losses downstream are unchanged. Parameters and optimizer
  // state stay fp32. Off by default; `--precision bf16` turns it on.
  bool autocast_bf16 = default_autocast_bf16();
  Rope rope;
  Backbone model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied
  // The LM head as decoding reads it after store_weights_bf16/int8 (bf16, or int8 with lm_scale [V]).
  at::Tensor lm_compact, lm_scale;
};
TORCH_MODULE(CausalLM);

}  // namespace handoff
