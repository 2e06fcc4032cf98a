#include "model/one_token_attention.h"

#include <ATen/ops/empty.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/error.h"
#include "model/attention_lanes.h"
#include "model/gemv.h"

namespace handoff {

namespace {

using lanes::Strides3;
using lanes::strides3;
using lanes::Visibility;

struct Dims {
  int64_t B, H, KV, T, S;
  float scale;
};

// Query head h of row b: out [B, T, H·HD] gets its softmax-weighted values. `scores` holds S floats. HD is a
// compile-time head size so that the output row stays in registers across the keys; L is the lanes form
// (attention_lanes.h).
template <int HD, class L>
__attribute__((always_inline)) inline void forward_head(const Dims& n, const Strides3& q, const Strides3& k,
                                                        const Strides3& v, const Strides3& bias, int64_t b,
                                                        int64_t h, float* scores, float* out) {
  const int64_t kvh = h / (n.H / n.KV);
  const float* kp = k.p + b * k.s0 + kvh * k.s1;
  const float* vp = v.p + b * v.s0 + kvh * v.s1;
  for (int64_t t = 0; t < n.T; ++t) {
    const float* qt = q.p + b * q.s0 + h * q.s1 + t * q.s2;
    const Visibility vis(bias.p + b * bias.s0 + t * bias.s1, bias.s2, n.S);
    L::template dots<HD>(qt, kp, k.s2, n.S, scores);
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < n.S; ++s) {
      scores[s] = vis.hidden(s) ? -std::numeric_limits<float>::infinity() : scores[s] * n.scale + vis.bias(s);
      top = std::max(top, scores[s]);
    }
    const float total = L::exp_shifted(scores, n.S, top);
    float acc[HD] = {};
    L::template weighted_sum<HD>(scores, vp, v.s2, n.S, acc);
    float* o = out + (b * n.T + t) * n.H * HD + h * HD;
    const float inv = 1.0f / total;
    for (int d = 0; d < HD; ++d) o[d] = acc[d] * inv;
  }
}

// One query head over two key ranges, the row's prompt's shared keys (masked where `prefix_bias` is at or
// below -1e29) and then its own (all visible): the softmax and the weighted sum run over the two as over
// their concatenation, in the same order, so the bits are one_token_attention's over a copied cache.
struct Segments {
  const float *pk, *pv, *prefix_bias;  // prompt keys/values of this row's prompt and head, its mask row
  int64_t P, pstride;
  const float *k, *v;  // the row's own keys/values of this head
  int64_t S, stride;
};

template <int HD, class L>
__attribute__((always_inline)) inline void prefixed_head(const float* q, const Segments& g, float scale,
                                                         float* scores, float* out) {
  L::template dots<HD>(q, g.pk, g.pstride, g.P, scores);
  L::template dots<HD>(q, g.k, g.stride, g.S, scores + g.P);
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t s = 0; s < g.P; ++s) {
    const float b = g.prefix_bias[s];
    scores[s] = b <= lanes::kMaskedBias ? -std::numeric_limits<float>::infinity() : scores[s] * scale + b;
    top = std::max(top, scores[s]);
  }
  for (int64_t s = g.P; s < g.P + g.S; ++s) {
    scores[s] = scores[s] * scale + 0.0f;  // + the zero bias of a visible key, as the one-range form adds it
    top = std::max(top, scores[s]);
  }
  const float total = L::exp_shifted(scores, g.P + g.S, top);
  float acc[HD] = {};
  L::template weighted_sum<HD>(scores, g.pv, g.pstride, g.P, acc);
  L::template weighted_sum<HD>(scores + g.P, g.v, g.stride, g.S, acc);
  const float inv = 1.0f / total;
  for (int d = 0; d < HD; ++d) out[d] = acc[d] * inv;
}

template <int HD>
void prefixed_head_plain(const float* q, const Segments& g, float scale, float* scores, float* out) {
  prefixed_head<HD, lanes::Plain>(q, g, scale, scores, out);
}

#if defined(__x86_64__)
template <int HD>
__attribute__((target("avx2,fma"))) void prefixed_head_avx2(const float* q, const Segments& g, float scale,
                                                            float* scores, float* out) {
  prefixed_head<HD, lanes::Avx2>(q, g, scale, scores, out);
}
#endif

using PrefixedFn = void (*)(const float*, const Segments&, float, float*, float*);

template <int HD>
PrefixedFn prefixed_of(bool portable) {
#if defined(__x86_64__)
  if (!portable && lanes::has_avx2_fma()) return prefixed_head_avx2<HD>;
#endif
  return prefixed_head_plain<HD>;
}

PrefixedFn prefixed_for(int64_t hd, bool portable) {
  switch (hd) {
    case 16:
      return prefixed_of<16>(portable);
    case 32:
      return prefixed_of<32>(portable);
    case 64:
      return prefixed_of<64>(portable);
    case 128:
      return prefixed_of<128>(portable);
    default:
      return nullptr;
  }
}

// The same source compiled twice: for the build's baseline and, where the CPU has them, with AVX2.
template <int HD>
void forward_head_plain(const Dims& n, const Strides3& q, const Strides3& k, const Strides3& v,
                        const Strides3& bias, int64_t b, int64_t h, float* scores, float* out) {
  forward_head<HD, lanes::Plain>(n, q, k, v, bias, b, h, scores, out);
}

#if defined(__x86_64__)
template <int HD>
__attribute__((target("avx2,fma"))) void forward_head_avx2(const Dims& n, const Strides3& q,
                                                           const Strides3& k, const Strides3& v,
                                                           const Strides3& bias, int64_t b, int64_t h,
                                                           float* scores, float* out) {
  forward_head<HD, lanes::Avx2>(n, q, k, v, bias, b, h, scores, out);
}
#endif

using ForwardFn = void (*)(const Dims&, const Strides3&, const Strides3&, const Strides3&, const Strides3&,
                           int64_t, int64_t, float*, float*);

template <int HD>
ForwardFn kernel_of(bool portable) {
#if defined(__x86_64__)
  if (!portable && lanes::has_avx2_fma()) return forward_head_avx2<HD>;
#endif
  return forward_head_plain<HD>;
}

ForwardFn kernel_for(int64_t hd, bool portable = false) {
  switch (hd) {
    case 16:
      return kernel_of<16>(portable);
    case 32:
      return kernel_of<32>(portable);
    case 64:
      return kernel_of<64>(portable);
    case 128:
      return kernel_of<128>(portable);
    default:
      return nullptr;
  }
}

Dims dims_of(const at::Tensor& q, const at::Tensor& k) {
  return {q.size(0), q.size(1), k.size(1),
          q.size(2), k.size(2), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
}

}  // namespace

float exp_shifted(float* scores, int64_t n, float top, bool portable) {
  return portable ? lanes::exp_shifted_plain(scores, n, top) : lanes::exp_shifted_fast(scores, n, top);
}

at::Tensor one_token_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& bias, bool portable) {
  if (!one_token_attention_applies(q, k, v, bias))
    throw Error(
        "one_token_attention: fp32 CPU q [B, H, 1, hd], k and v [B, KV, S, hd] with hd in {16, 32, 64, "
        "128} and a bias broadcastable to [B, 1, 1, S] expected");
  const Dims n = dims_of(q, k);
  auto out = at::empty({n.B, n.T, n.H * q.size(3)}, q.options());
  const ForwardFn fn = kernel_for(q.size(3), portable);
  const Strides3 qo = strides3(q, 0, 1, 2), ko = strides3(k, 0, 1, 2), vo = strides3(v, 0, 1, 2);
  const Strides3 bo = strides3(bias, 0, 2, 3);
  float* o = out.data_ptr<float>();
  for_row_blocks(n.B * n.H, [&](int64_t begin, int64_t end) {  // OpenMP threads (gemv.h)
    std::vector<float> scores(static_cast<size_t>(n.S));
    for (int64_t i = begin; i < end; ++i) fn(n, qo, ko, vo, bo, i / n.H, i % n.H, scores.data(), o);
  });
  return out;
}

at::Tensor one_token_attention_prefixed(const at::Tensor& q, const at::Tensor& prefix_k,
                                        const at::Tensor& prefix_v, const at::Tensor& prefix_bias,
                                        const std::vector<int64_t>& rows, const at::Tensor& k,
                                        const at::Tensor& v, bool portable) {
  const auto fp32 = [](const at::Tensor& t) {
    return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 4;
  };
  const bool typed = fp32(q) && fp32(k) && fp32(v) && fp32(prefix_k) && fp32(prefix_v) && fp32(prefix_bias);
  const int64_t B = typed ? q.size(0) : 0, H = typed ? q.size(1) : 0, hd = typed ? q.size(3) : 0;
  const int64_t KV = typed ? k.size(1) : 0, D = typed ? prefix_k.size(0) : 0,
                P = typed ? prefix_k.size(2) : 0;
  const int64_t S = typed ? k.size(2) : 0;
  const bool fits = typed && (hd == 16 || hd == 32 || hd == 64 || hd == 128) && q.size(2) == 1 &&
                    q.stride(3) == 1 && KV > 0 && H % KV == 0 && k.size(0) == B && k.size(3) == hd && S > 0 &&
                    v.sizes() == k.sizes() && k.stride(3) == 1 && v.stride(3) == 1 &&
                    prefix_v.sizes() == prefix_k.sizes() && prefix_k.size(1) == KV &&
                    prefix_k.size(3) == hd && prefix_k.is_contiguous() && prefix_v.is_contiguous() &&
                    prefix_bias.sizes() == at::IntArrayRef({D, 1, 1, P}) && prefix_bias.is_contiguous() &&
                    static_cast<int64_t>(rows.size()) == B;
  if (!fits)
    throw Error(
        "one_token_attention_prefixed: q [B, H, 1, hd], contiguous prefix keys/values [D, KV, P, hd] with a "
        "bias [D, 1, 1, P], one prefix row per query row, own keys/values [B, KV, S, hd] expected");
  for (int64_t r : rows)
    if (r < 0 || r >= D) throw Error("one_token_attention_prefixed: a row's prefix index is out of range");
  auto out = at::empty({B, 1, H * hd}, q.options());
  const PrefixedFn fn = prefixed_for(hd, portable);
  const Strides3 qo = strides3(q, 0, 1, 2), ko = strides3(k, 0, 1, 2), vo = strides3(v, 0, 1, 2);
  const float *pk = prefix_k.data_ptr<float>(), *pv = prefix_v.data_ptr<float>();
  const float* pb = prefix_bias.data_ptr<float>();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  float* o = out.data_ptr<float>();
  for_row_blocks(B * H, [&](int64_t begin, int64_t end) {  // OpenMP threads (gemv.h)
    std::vector<float> scores(static_cast<size_t>(P + S));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H, kvh = h / (H / KV), d = rows[static_cast<size_t>(b)];
      const Segments g{pk + (d * KV + kvh) * P * hd,   pv + (d * KV + kvh) * P * hd,   pb + d * P, P,    hd,
                       ko.p + b * ko.s0 + kvh * ko.s1, vo.p + b * vo.s0 + kvh * vo.s1, S,          ko.s2};
      fn(qo.p + b * qo.s0 + h * qo.s1, g, scale, scores.data(), o + i * hd);
    }
  });
  return out;
}

bool one_token_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& bias) {
  return lanes::attention_shapes_fit(q, k, v, bias) && q.size(2) == 1 && bias.size(2) == 1 &&
         q.stride(3) == 1 && k.stride(3) == 1 && v.stride(3) == 1;
}

}  // namespace handoff
