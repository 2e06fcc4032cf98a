#include "model/fused_decode.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "model/gemv.h"
#include "model/one_token_attention.h"

namespace handoff {

namespace {

// y[r] = x[r] / sqrt(mean(x[r]²) + eps) · w, row by row, as RMSNormImpl computes it (x·r first, then ·w).
void rms_norm_rows(const float* x, int64_t x_stride, float* y, int64_t y_stride, int64_t rows, int64_t n,
                   const float* w, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * x_stride;
    float* yr = y + r * y_stride;
    float ss = 0.0f;
    for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * inv * w[i];
  }
}

// HF's rotate-half RoPE of one head in place: x1' = x1·cos − x2·sin, x2' = x2·cos + x1·sin.
void rope_head(float* x, const float* c, const float* s, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    x[i] = a * c[i] - b * s[i];
    x[i + half] = b * c[i] + a * s[i];
  }
}

const float* param(const RMSNorm& n) {
  return n->weight.data_ptr<float>();
}

// out = x · wt (+ bias) for rows x [B, in] and wt [in, out] (a transposed view); `accumulate`: out += x · wt.
// One row takes a GEMV on wt's matrix (see FusedDecoder::Layer), with the decoder's choice between
// OpenBLAS's and our threaded one (decoder.cpp project(), gemv.h).
void linear_rows(at::Tensor& out, const at::Tensor& x, const at::Tensor& wt, const at::Tensor& bias,
                 bool accumulate) {
  if (x.size(0) == 1) {
    at::Tensor o = out.view({out.size(1)});
    const at::Tensor row = x.view({x.size(1)});
    if (use_parallel_gemv(wt.t())) {
      const at::Tensor y = gemv_rows_parallel(wt.t(), row, accumulate ? at::Tensor() : bias);
      accumulate ? o.add_(y) : o.copy_(y);
    } else if (accumulate) {
      o.addmv_(wt.t(), row);
    } else if (bias.defined()) {
      at::addmv_out(o, bias, wt.t(), row);
    } else {
      at::mv_out(o, wt.t(), row);
    }
  } else if (accumulate) {
    out.addmm_(x, wt);
  } else if (bias.defined()) {
    at::addmm_out(out, bias, x, wt);
  } else {
    at::mm_out(out, x, wt);
  }
}

// out's column blocks, one per weight of `wt` (packed or one per projection), from the same rows x.
void blocks(at::Tensor& out, const at::Tensor& x, const std::vector<at::Tensor>& wt,
            const std::vector<at::Tensor>& bias) {
  if (wt.size() == 1) return linear_rows(out, x, wt[0], bias.empty() ? at::Tensor() : bias[0], false);
  int64_t col = 0;
  for (size_t i = 0; i < wt.size(); ++i) {
    at::Tensor part = out.narrow(1, col, wt[i].size(1));
    linear_rows(part, x, wt[i], bias.empty() ? at::Tensor() : bias[i], /*accumulate=*/false);
    col += wt[i].size(1);
  }
}

}  // namespace

bool FusedDecoder::applies(const CausalLM& model) {
  const auto& w = model->model->embed_tokens->weight;
  const int64_t hd = model->config.head_dim();
  return w.device().is_cpu() && w.scalar_type() == at::kFloat && !model->lm_compact.defined() &&
         !model->autocast_bf16 && (hd == 16 || hd == 32 || hd == 64 || hd == 128);
}

FusedDecoder::FusedDecoder(CausalLM& model, int64_t positions, int64_t pack_bytes) : model_(model) {
  if (!applies(model)) throw Error("FusedDecoder: fp32 weights on the CPU without autocast expected");
  const auto& c = model->config;
  D_ = c.hidden_size;
  H_ = c.num_attention_heads;
  KV_ = c.num_key_value_heads;
  hd_ = c.head_dim();
  I_ = c.intermediate_size;
  V_ = c.vocab_size;
  eps_ = static_cast<float>(c.rms_norm_eps);
  // Packed q/k/v and gate/up cost a copy of those weights per FusedDecoder (one per generate() call): worth
  // it for the presets' small models (one GEMM instead of three and two), not for a 0.5B model's ~1 GB.
  const int64_t packed = c.num_hidden_layers * D_ * ((H_ + 2 * KV_) * hd_ + 2 * I_) * 4;
  const bool pack = packed <= pack_bytes;
  at::NoGradGuard no_grad;
  for (auto& l : *model->model->layers) {
    auto* d = l->as<DecoderLayerImpl>();
    auto& a = *d->self_attn;
    Layer L;
    const auto bias = [](const torch::nn::Linear& p) { return p->bias.defined() ? p->bias : at::Tensor(); };
    if (pack) {
      L.qkv_t = {at::cat({a.q_proj->weight, a.k_proj->weight, a.v_proj->weight}, 0).t()};
      L.qkv_bias = {a.q_proj->bias.defined() ? at::cat({a.q_proj->bias, a.k_proj->bias, a.v_proj->bias}, 0)
                                             : at::Tensor()};
      L.gate_up_t = {at::cat({d->mlp->gate_proj->weight, d->mlp->up_proj->weight}, 0).t()};
    } else {
      L.qkv_t = {a.q_proj->weight.t(), a.k_proj->weight.t(), a.v_proj->weight.t()};
      L.qkv_bias = {bias(a.q_proj), bias(a.k_proj), bias(a.v_proj)};
      L.gate_up_t = {d->mlp->gate_proj->weight.t(), d->mlp->up_proj->weight.t()};
    }
    L.o_t = a.o_proj->weight.t();
    L.down_t = d->mlp->down_proj->weight.t();
    L.in_norm = param(d->input_layernorm);
    L.post_norm = param(d->post_attention_layernorm);
    if (a.q_norm) {
      L.q_norm = param(a.q_norm);
      L.k_norm = param(a.k_norm);
    }
    layers_.push_back(L);
  }
  embed_ = model->model->embed_tokens->weight.contiguous();
  lm_t_ = model->lm_weight().t();
  final_norm_ = model->model->norm->weight;
  // The angles as Rope::cos_sin takes them (fp32 position × fp32 frequency), their cos/sin in double, for the
  // positions the caller will decode (a long-context model's whole table would be millions of entries).
  const at::Tensor freq = model->rope.cos_table.to(at::kCPU).contiguous();
  const float* f = freq.data_ptr<float>();
  const int64_t half = hd_ / 2;
  positions_ = std::min(std::max<int64_t>(positions, 0), c.max_position_embeddings);
  cos_.resize(positions_ * half);
  sin_.resize(positions_ * half);
  for (int64_t p = 0; p < positions_; ++p)
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * f[i];
      cos_[p * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin_[p * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
}

at::Tensor FusedDecoder::step(const at::Tensor& ids, const at::Tensor& positions, const at::Tensor& key_valid,
                              KVCache& cache, const SharedPrefix* prefix) const {
  const int64_t B = ids.size(0), S = cache.length + 1, half = hd_ / 2;
  const int64_t qkv_cols = (H_ + 2 * KV_) * hd_;
  if (S > cache.capacity)
    throw Error("KV cache overflow: " + std::to_string(S) + " positions > capacity " +
                std::to_string(cache.capacity));
  if (positions.size(0) != B || (key_valid.defined() && (key_valid.size(0) != B || key_valid.size(1) != S)))
    throw Error("FusedDecoder: ids [B], positions [B] and key_valid [B, cache length + 1] expected");
  for (size_t l = 0; l < layers_.size(); ++l)
    if (cache.k[l].stride(3) != 1 || cache.v[l].strides() != cache.k[l].strides() || cache.k[l].size(0) != B)
      throw Error(
          "FusedDecoder: an fp32 KV cache of the step's rows, keys and values laid out alike, expected");
  if (prefix && (prefix->k.size() != layers_.size() || static_cast<int64_t>(prefix->rows.size()) != B ||
                 key_valid.defined()))
    throw Error(
        "FusedDecoder: a shared prefix of every layer, one prompt index per row and no key mask (a row's own "
        "keys are all valid) expected");
  const at::Tensor id = ids.contiguous(), pos = positions.contiguous();
  const int64_t *idp = id.data_ptr<int64_t>(), *pp = pos.data_ptr<int64_t>();
  auto opts = embed_.options();
  at::Tensor x = at::empty({B, D_}, opts), normed = at::empty({B, D_}, opts);
  at::Tensor qkv = at::empty({B, qkv_cols}, opts), gate_up = at::empty({B, 2 * I_}, opts);
  at::Tensor act = at::empty({B, I_}, opts);
  at::Tensor bias = prefix ? at::Tensor() : at::zeros({B, 1, 1, S}, opts);
  float* xp = x.data_ptr<float>();
  const float* ep = embed_.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    if (idp[b] < 0 || idp[b] >= V_)
      throw Error("token id " + std::to_string(idp[b]) + " is outside the vocabulary");
    if (pp[b] < 0 || pp[b] >= positions_)
      throw Error("position " + std::to_string(pp[b]) + " is outside the decoder's " +
                  std::to_string(positions_) + " positions");
    std::copy_n(ep + idp[b] * D_, D_, xp + b * D_);
  }
  if (key_valid.defined() &&
      !prefix) {  // the decoder's additive mask: -1e30 on padding keys (decoder.cpp hidden())
    const auto kv = key_valid.accessor<bool, 2>();
    float* bp = bias.data_ptr<float>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s)
        if (!kv[b][s]) bp[b * S + s] = -1e30f;
  }
  float* np = normed.data_ptr<float>();
  float* qp = qkv.data_ptr<float>();
  const auto q = qkv.narrow(1, 0, H_ * hd_).view({B, H_, 1, hd_});
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    rms_norm_rows(xp, D_, np, D_, B, D_, L.in_norm, eps_);
    blocks(qkv, normed, L.qkv_t, L.qkv_bias);
    float* kc = cache.k[l].data_ptr<float>();
    float* vc = cache.v[l].data_ptr<float>();
    const auto st = cache.k[l].strides();  // [B, KV, capacity, hd] in any order of the first three
    for (int64_t b = 0; b < B; ++b) {
      float* r = qp + b * qkv_cols;
      if (L.q_norm) {  // Qwen3: per-head RMSNorm of queries and keys, before RoPE
        rms_norm_rows(r, hd_, r, hd_, H_, hd_, L.q_norm, eps_);
        rms_norm_rows(r + H_ * hd_, hd_, r + H_ * hd_, hd_, KV_, hd_, L.k_norm, eps_);
      }
      const float *c = cos_.data() + pp[b] * half, *s = sin_.data() + pp[b] * half;
      for (int64_t h = 0; h < H_ + KV_; ++h) rope_head(r + h * hd_, c, s, half);
      for (int64_t h = 0; h < KV_; ++h) {
        const int64_t at_col = b * st[0] + h * st[1] + cache.length * st[2];
        std::copy_n(r + (H_ + h) * hd_, hd_, kc + at_col);
        std::copy_n(r + (H_ + KV_ + h) * hd_, hd_, vc + at_col);
      }
    }
    const auto k = cache.k[l].narrow(2, 0, S), v = cache.v[l].narrow(2, 0, S);
    const at::Tensor attn =
        prefix ? one_token_attention_prefixed(q, prefix->k[l], prefix->v[l], prefix->bias, prefix->rows, k, v)
               : one_token_attention(q, k, v, bias);
    linear_rows(x, attn.view({B, H_ * hd_}), L.o_t, {}, /*accumulate=*/true);
    rms_norm_rows(xp, D_, np, D_, B, D_, L.post_norm, eps_);
    blocks(gate_up, normed, L.gate_up_t, {});
    at::silu_out(act, gate_up.narrow(1, 0, I_));
    act.mul_(gate_up.narrow(1, I_, I_));
    linear_rows(x, act, L.down_t, {}, /*accumulate=*/true);
  }
  cache.length = S;
  rms_norm_rows(xp, D_, np, D_, B, D_, final_norm_.data_ptr<float>(), eps_);
  at::Tensor logits = at::empty({B, V_}, opts);
  linear_rows(logits, normed, lm_t_, {}, /*accumulate=*/false);
  return logits;
}

}  // namespace handoff
