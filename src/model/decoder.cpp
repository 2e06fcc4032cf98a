#include "model/decoder.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <tuple>

#include <torch/nn/init.h>

#include "common/error.h"
#include "model/autocast.h"
#include "model/fused_attention.h"
#include "model/fused_layers.h"
#include "model/fused_update_scope.h"
#include "model/gemv.h"
#include "model/one_token_attention.h"

namespace handoff {

// ---- RMSNorm: x / sqrt(mean(x²) + eps) · w ----
RMSNormImpl::RMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  if (FusedUpdateScope::active() && fused_rms_norm_applies(x, weight))  // the policy update (fused_layers.h)
    return fused_rms_norm(x, weight, eps);
  return x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps) * weight;
}

// ---- RoPE ----
static at::Tensor rope_inv_freq(const ModelConfig& c) {
  const int64_t half = c.head_dim() / 2;
  std::vector<float> f(half);
  for (int64_t i = 0; i < half; ++i) {
    double freq = 1.0 / std::pow(c.rope_theta, (2.0 * i) / static_cast<double>(c.head_dim()));
    if (c.rope_scaling.type == "llama3") {  // Llama-3.1 frequency-dependent scaling
      const auto& r = c.rope_scaling;
      const double old_len = static_cast<double>(r.original_max_position_embeddings);
      const double low_wavelen = old_len / r.low_freq_factor, high_wavelen = old_len / r.high_freq_factor;
      const double wavelen = 2.0 * M_PI / freq;
      if (wavelen > low_wavelen) {
        freq = freq / r.factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth =
            (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
        freq = (1.0 - smooth) * freq / r.factor + smooth * freq;
      }
    }
    f[i] = static_cast<float>(freq);
  }
  return torch::tensor(f);
}

Rope::Rope(const ModelConfig& c) {
  cos_table = rope_inv_freq(c);
}

std::pair<at::Tensor, at::Tensor> Rope::cos_sin(const at::Tensor& positions) const {
  // angles [B, T, hd/2] → duplicated to [B, 1, T, hd] (HF: emb = cat(freqs, freqs)).
  auto angles = positions.to(at::kFloat).unsqueeze(-1) * cos_table.to(positions.device());
  auto emb = at::cat({angles, angles}, -1).unsqueeze(1);
  return {emb.cos(), emb.sin()};
}

at::Tensor Rope::apply(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) const {
  if (FusedUpdateScope::active() && fused_rope_applies(x, cos, sin)) return fused_rope(x, cos, sin);
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  auto rotated = at::cat({-x2, x1}, -1);
  return x * cos.to(x.scalar_type()) + rotated * sin.to(x.scalar_type());
}

// ---- Batch-1 decoding: one row through a weight matrix ----
// For a single input row OpenBLAS's sgemm packs the whole weight matrix on every call (≈10 GB/s here), while
// sgemv streams it once: 3-5x faster per projection and ≈3x on the 151936-row LM head of a 0.5B model
// (bench/bench_load). So a single row takes mv/addmv; anything larger keeps the GEMM.
// Weights stored compact (`--weights bf16|int8`): bf16, or int8 with its row scales (undefined for bf16).
static bool compact(const at::Tensor& W) {
  return W.scalar_type() == at::kBFloat16 || W.scalar_type() == at::kChar;
}

// Several fp32 rows through compact weights W [out, in]: up to 4 rows, one GEMV each (2 or 1 bytes a weight
// per row); more, W widened to fp32 once for a GEMM (≈ 10 bytes a weight: read, write, read again).
static at::Tensor compact_rows(const at::Tensor& W, const at::Tensor& scale, const at::Tensor& x,
                               const at::Tensor& bias) {
  const int64_t rows = x.numel() / x.size(-1);
  if (rows > 4) {
    at::Tensor wide = W.to(at::kFloat);
    if (scale.defined()) wide.mul_(scale.unsqueeze(1));  // one fp32 copy of W, not two
    return at::linear(x, wide, bias);
  }
  const at::Tensor flat = x.reshape({rows, x.size(-1)});
  std::vector<at::Tensor> ys;
  for (int64_t r = 0; r < rows; ++r) ys.push_back(gemv_rows_parallel(W, flat[r].contiguous(), bias, scale));
  auto sizes = x.sizes().vec();
  sizes.back() = W.size(0);
  return at::stack(ys).view(sizes);
}

static at::Tensor weight_scale(torch::nn::Linear& layer) {
  if (layer->weight.scalar_type() != at::kChar) return {};
  const at::Tensor* s = layer->named_buffers(/*recurse=*/false).find("weight_scale");
  if (!s) throw Error("an int8 linear layer without its weight_scale buffer");
  return *s;
}

static at::Tensor project(torch::nn::Linear& layer, const at::Tensor& x) {
  const bool small = compact(layer->weight) && x.scalar_type() == at::kFloat;
  if (x.numel() != x.size(-1))
    return small ? compact_rows(layer->weight, weight_scale(layer), x, layer->bias) : layer(x);
  auto row = x.reshape({x.size(-1)});
  auto y = (small || use_parallel_gemv(layer->weight)) && row.scalar_type() == at::kFloat
               ? gemv_rows_parallel(layer->weight, row, layer->bias, weight_scale(layer))
           : layer->bias.defined() ? at::addmv(layer->bias, layer->weight, row)
                                   : at::mv(layer->weight, row);
  auto sizes = x.sizes().vec();
  sizes.back() = y.size(0);
  return y.view(sizes);
}

// ---- Attention with grouped-query heads ----
AttentionImpl::AttentionImpl(const ModelConfig& c)
    : n_heads(c.num_attention_heads), n_kv(c.num_key_value_heads), head_dim(c.head_dim()) {
  const bool bias = c.has_qkv_bias();
  using torch::nn::LinearOptions;
  q_proj = register_module("q_proj",
                           torch::nn::Linear(LinearOptions(c.hidden_size, n_heads * head_dim).bias(bias)));
  k_proj =
      register_module("k_proj", torch::nn::Linear(LinearOptions(c.hidden_size, n_kv * head_dim).bias(bias)));
  v_proj =
      register_module("v_proj", torch::nn::Linear(LinearOptions(c.hidden_size, n_kv * head_dim).bias(bias)));
  o_proj = register_module("o_proj",
                           torch::nn::Linear(LinearOptions(n_heads * head_dim, c.hidden_size).bias(false)));
  if (c.has_qk_norm()) {
    q_norm = register_module("q_norm", RMSNorm(head_dim, c.rms_norm_eps));
    k_norm = register_module("k_norm", RMSNorm(head_dim, c.rms_norm_eps));
  }
}

// One query token per row (every decoding step over a KV cache: serving's slots, RL rollouts, evaluation) as
// broadcast multiply-sums rather than a batched matmul, because ATen's CPU bmm without MKL runs one small
// GEMM per (row, head) — B·n_kv·g calls per layer whose fixed cost was ~85 % of a 16-row step
// (bench/bench_slot_decode), and each call takes OpenBLAS's global buffer lock, so two threads decoding
// rollouts each ran at ~0.7x (issue 18). The temporaries are g times the keys read, which stays small next to
// the weights at decoding batch sizes.
at::Tensor AttentionImpl::attend_one_token(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                           const at::Tensor& bias) const {
  const int64_t B = q.size(0), g = n_heads / n_kv;
  auto qg = q.reshape({B, n_kv, g, 1, head_dim});
  auto scores = (qg * k.unsqueeze(2)).sum(-1) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  auto probs = at::softmax(scores + bias, -1);                // bias [B, 1, 1, S]
  auto out = (probs.unsqueeze(-1) * v.unsqueeze(2)).sum(-2);  // [B, n_kv, g, hd]
  return out.reshape({B, 1, n_heads * head_dim});
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                  const at::Tensor& bias, KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1);
  auto q = project(q_proj, x).view({B, T, n_heads, head_dim});
  auto k = project(k_proj, x).view({B, T, n_kv, head_dim});
  if (q_norm) {  // Qwen3: per-head RMSNorm of queries and keys (HF modeling_qwen3.py), before RoPE
    q = q_norm(q);
    k = k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  auto v = project(v_proj, x).view({B, T, n_kv, head_dim}).transpose(1, 2);
  q = rope->apply(q, cos, sin);
  k = rope->apply(k, cos, sin);
  if (cache) {  // write the new keys/values in place, then attend over everything filled so far
    const int64_t start = cache->length;
    if (cache->write_cols.defined()) {  // each row at its own column (kv_cache.h)
      if (T != 1) throw Error("KV cache: per-row columns take one token per step, not " + std::to_string(T));
      auto idx = cache->write_cols.view({B, 1, 1, 1}).expand({B, n_kv, 1, head_dim});
      // scatter_ does not convert (copy_ does): under bf16 autocast the projections are bf16, the cache fp32.
      cache->k[layer].scatter_(2, idx, k.to(cache->k[layer].scalar_type()));
      cache->v[layer].scatter_(2, idx, v.to(cache->v[layer].scalar_type()));
    } else {
      cache->k[layer].narrow(2, start, T).copy_(k);
      cache->v[layer].narrow(2, start, T).copy_(v);
    }
    k = cache->k[layer].narrow(2, 0, start + T);
    v = cache->v[layer].narrow(2, 0, start + T);
  }
  const int64_t S = k.size(2), g = n_heads / n_kv;
  // One query token in fp32 on the CPU: our kernel, no per-(row, head) GEMMs and no temporaries
  // (model/one_token_attention.h says what it pays). Elsewhere (CUDA, bf16 autocast, head sizes it has no
  // copy for) multiply-sums, which materialise [B, n_heads, S, hd] twice: past ~16 MB (long rows) the
  // per-(row, head) GEMMs' fixed cost no longer dominates, and the batched matmul below takes over.
  if (cache && T == 1 && one_token_attention_applies(q, k, v, bias))
    return project(o_proj, one_token_attention(q, k, v, bias));
  if (cache && T == 1 && B * n_heads * S * head_dim <= (int64_t{1} << 22))
    return project(o_proj, attend_one_token(q, k, v, bias));
  // The policy update's forward and backward (model/fused_attention.h); SFT keeps ATen's ops below.
  if (T > 1 && FusedUpdateScope::active() && fused_attention_applies(q, k, v, bias))
    return project(o_proj, fused_attention(q, k, v, bias));
  // Group query heads under their shared key/value head instead of copying keys g times.
  auto qg = q.reshape({B, n_kv, g, T, head_dim});
  auto scores =
      at::matmul(qg, k.unsqueeze(2).transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  scores = scores + bias.unsqueeze(1);  // bias [B, 1, T, S] → [B, 1, 1, T, S]
  auto probs = at::softmax(scores, -1);
  auto out = at::matmul(probs, v.unsqueeze(2));  // [B, n_kv, g, T, hd]
  out = out.reshape({B, n_heads, T, head_dim}).transpose(1, 2).reshape({B, T, n_heads * head_dim});
  (void)S;
  return project(o_proj, out);
}

// ---- SwiGLU MLP: down(silu(gate(x)) · up(x)) ----
MlpImpl::MlpImpl(const ModelConfig& c) {
  using torch::nn::LinearOptions;
  gate_proj = register_module(
      "gate_proj", torch::nn::Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
  up_proj = register_module("up_proj",
                            torch::nn::Linear(LinearOptions(c.hidden_size, c.intermediate_size).bias(false)));
  down_proj = register_module(
      "down_proj", torch::nn::Linear(LinearOptions(c.intermediate_size, c.hidden_size).bias(false)));
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  return project(down_proj, at::silu(project(gate_proj, x)) * project(up_proj, x));
}

// ---- Pre-norm block ----
DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c) {
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  self_attn = register_module("self_attn", Attention(c));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  mlp = register_module("mlp", Mlp(c));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                     const at::Tensor& bias, KVCache* cache, int64_t layer) {
  auto h = x + self_attn(input_layernorm(x), cos, sin, bias, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

BackboneImpl::BackboneImpl(const ModelConfig& c, bool random_init) {
  auto embed_opts = torch::nn::EmbeddingOptions(c.vocab_size, c.hidden_size);
  if (!random_init) embed_opts._weight(torch::empty({c.vocab_size, c.hidden_size}));  // skips its N(0,1) fill
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(embed_opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

// ---- The whole model ----
CausalLMImpl::CausalLMImpl(const ModelConfig& c, bool random_init) : config(c), rope(c) {
  config.validate("model config");
  model = register_module("model", Backbone(c, random_init));
  if (!c.tie_word_embeddings)
    lm_head = register_module(
        "lm_head", torch::nn::Linear(torch::nn::LinearOptions(c.hidden_size, c.vocab_size).bias(false)));
  for (auto& l : *model->layers) l->as<DecoderLayer>()->self_attn->rope = &rope;
  if (!random_init) return;
  // GPT-2/Llama initialisation: N(0, 0.02) for matrices, zeros for biases; RMSNorm weights stay 1.
  torch::NoGradGuard no_grad;
  for (auto& p : named_parameters()) {
    if (p.value().dim() == 2) {
      p.value().normal_(0.0, 0.02);
    } else if (p.key().find("bias") != std::string::npos) {
      p.value().zero_();
    }
  }
}

at::Tensor CausalLMImpl::lm_weight() const {
  return config.tie_word_embeddings ? model->embed_tokens->weight : lm_head->weight;
}

// Every linear layer of the decoder, and the untied LM head when there is one.
static std::vector<torch::nn::Linear*> linear_layers(Backbone& model, torch::nn::Linear& lm_head) {
  std::vector<torch::nn::Linear*> out;
  for (auto& layer : *model->layers) {
    auto d = layer->as<DecoderLayerImpl>();
    for (auto* l : {&d->self_attn->q_proj, &d->self_attn->k_proj, &d->self_attn->v_proj,
                    &d->self_attn->o_proj, &d->mlp->gate_proj, &d->mlp->up_proj, &d->mlp->down_proj})
      out.push_back(l);
  }
  if (lm_head) out.push_back(&lm_head);
  return out;
}

void CausalLMImpl::store_weights_bf16() {
  if (lm_scale.defined()) throw Error("the weights are already int8; --weights takes one format");
  at::NoGradGuard no_grad;
  for (auto* l : linear_layers(model, lm_head)) {
    (*l)->weight.set_requires_grad(false);
    (*l)->weight.set_data((*l)->weight.detach().to(at::kBFloat16).contiguous());
  }
  lm_compact =
      lm_head ? lm_head->weight : model->embed_tokens->weight.detach().to(at::kBFloat16).contiguous();
}

void CausalLMImpl::store_weights_int8() {
  if (lm_compact.defined() && !lm_scale.defined())
    throw Error("the weights are already bf16; --weights takes one format");
  if (lm_scale.defined()) return;
  at::NoGradGuard no_grad;
  for (auto* l : linear_layers(model, lm_head)) {
    auto [q, scale] = quantize_rows_int8((*l)->weight);
    (*l)->weight.set_requires_grad(false);
    (*l)->weight.set_data(q);
    (*l)->register_buffer("weight_scale", scale);
  }
  if (lm_head) {
    lm_compact = lm_head->weight;
    lm_scale = weight_scale(lm_head);
  } else {
    std::tie(lm_compact, lm_scale) = quantize_rows_int8(model->embed_tokens->weight);
  }
}

at::Device CausalLMImpl::device() const {
  return model->embed_tokens->weight.device();
}

KVCache CausalLMImpl::make_cache(int64_t batch, int64_t capacity, bool zeroed) const {
  KVCache cache;
  cache.capacity = capacity;
  auto opts = model->embed_tokens->weight.options().requires_grad(false);
  const std::vector<int64_t> shape{batch, config.num_key_value_heads, capacity, config.head_dim()};
  for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
    cache.k.push_back(zeroed ? at::zeros(shape, opts) : at::empty(shape, opts));
    cache.v.push_back(zeroed ? at::zeros(shape, opts) : at::empty(shape, opts));
  }
  return cache;
}

at::Tensor CausalLMImpl::hidden(const at::Tensor& input_ids, const at::Tensor& positions,
                                const at::Tensor& key_valid, KVCache* cache) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t offset = cache ? cache->length : 0, S = offset + T;
  if (cache && S > cache->capacity)
    throw Error("KV cache overflow: " + std::to_string(S) + " positions > capacity " +
                std::to_string(cache->capacity));
  rope.cos_table = rope.cos_table.to(input_ids.device());
  auto [cos, sin] = rope.cos_sin(positions);
  // Additive mask [B, 1, T, S]: causal over absolute indices, plus invalid (padding) keys. A large finite
  // negative instead of -inf keeps fully-masked padding rows finite (NaN would leak through 0·NaN later).
  auto opts = at::TensorOptions().device(input_ids.device());
  auto qi = at::arange(offset, S, opts.dtype(at::kLong)).unsqueeze(1);
  auto kj = at::arange(0, S, opts.dtype(at::kLong)).unsqueeze(0);
  auto allowed = (kj <= qi).unsqueeze(0);  // [1, T, S]
  if (key_valid.defined()) allowed = allowed & key_valid.unsqueeze(1);
  auto dtype = model->embed_tokens->weight.scalar_type();
  auto bias =
      at::zeros(allowed.sizes(), opts.dtype(dtype)).masked_fill(allowed.logical_not(), -1e30).unsqueeze(1);
  if (bias.size(0) != B) bias = bias.expand({B, 1, T, S});

  auto x = model->embed_tokens(input_ids);
  int64_t layer = 0;
  for (auto& l : *model->layers) x = l->as<DecoderLayer>()->forward(x, cos, sin, bias, cache, layer++);
  if (cache) cache->length = S;
  return model->norm(x);
}

namespace {

std::atomic<bool> g_default_autocast_bf16{false};

}  // namespace

void set_default_autocast_bf16(bool on) {
  g_default_autocast_bf16 = on;
}
bool default_autocast_bf16() {
  return g_default_autocast_bf16;
}

at::Tensor CausalLMImpl::forward(const at::Tensor& input_ids, const at::Tensor& positions,
                                 const at::Tensor& key_valid, KVCache* cache) {
  if (autocast_bf16 && model->embed_tokens->weight.scalar_type() == at::kFloat) {
    Bf16Autocast scope(device());  // see model/autocast.h
    return forward_logits(input_ids, positions, key_valid, cache).to(at::kFloat);
  }
  return forward_logits(input_ids, positions, key_valid, cache);
}

at::Tensor CausalLMImpl::forward_logits(const at::Tensor& input_ids, const at::Tensor& positions,
                                        const at::Tensor& key_valid, KVCache* cache) {
  auto h = hidden(input_ids, positions, key_valid, cache);
  const bool small = lm_compact.defined() && h.scalar_type() == at::kFloat;
  const at::Tensor w = small ? lm_compact : lm_weight();
  if (h.numel() == h.size(-1)) {  // batch-1 decoding: GEMV (see project())
    const at::Tensor row = h.reshape({h.size(-1)});
    const bool ours = (small || use_parallel_gemv(w)) && row.scalar_type() == at::kFloat;
    return (ours ? gemv_rows_parallel(w, row, {}, lm_scale) : at::mv(w, row))
        .view({h.size(0), h.size(1), -1});
  }
  return small ? compact_rows(w, lm_scale, h, {}) : at::matmul(h, w.t());
}

}  // namespace handoff
