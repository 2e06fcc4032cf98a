#include "model/fused_attention.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "common/error.h"
#include "model/attention_lanes.h"
#include "model/gemv.h"

namespace handoff {

namespace {

using lanes::Strides3;
using lanes::Visibility;

struct Shape {
  int64_t B, H, KV, T, S;
  float scale;
  int64_t group() const { return H / KV; }
};

// Query head h of row b over its T queries: probs [T, S] (normalised, kept for the backward) and its slice of
// out [B, T, H·HD]. q [T, HD], k and v [S, HD] are that head's contiguous rows; p holds S floats of scratch.
template <int HD, class L>
__attribute__((always_inline)) inline void forward_head(const Shape& n, const float* q, const float* k,
                                                        const float* v, const Strides3& bias, int64_t b,
                                                        int64_t h, float* probs, float* out) {
  for (int64_t t = 0; t < n.T; ++t) {
    float* p = probs + t * n.S;
    const Visibility vis(bias.p + b * bias.s0 + t * bias.s1, bias.s2, n.S);
    L::template dots<HD>(q + t * HD, k, HD, n.S, p);
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < n.S; ++s) {
      p[s] = vis.hidden(s) ? -std::numeric_limits<float>::infinity() : p[s] * n.scale + vis.bias(s);
      top = std::max(top, p[s]);
    }
    const float inv = 1.0f / L::exp_shifted(p, n.S, top);
    for (int64_t s = 0; s < n.S; ++s) p[s] = p[s] * inv;
    float acc[HD] = {};
    L::template weighted_sum<HD>(p, v, HD, n.S, acc);
    float* o = out + (b * n.T + t) * n.H * HD + h * HD;
    for (int d = 0; d < HD; ++d) o[d] = acc[d];
  }
}

// The backward of every query head over key/value head kvh of row b (they add into the same dk, dv rows, so
// one worker owns them): with p = softmax row, dp_s = do · v_s and ds_s = p_s (dp_s − Σ p·dp) · scale,
// dq_t = Σ_s ds_s k_s, dk_s += ds_s q_t, dv_s += p_s do_t. Masked keys (p_s = 0) are skipped. dp and ds hold
// S floats of scratch.
template <int HD, class L>
__attribute__((always_inline)) inline void backward_group(const Shape& n, const float* q, const float* k,
                                                          const float* v, const float* probs,
                                                          const float* dout, int64_t b, int64_t kvh,
                                                          float* dq, float* dk, float* dv, float* dp,
                                                          float* ds) {
  const float* kr = k + (b * n.KV + kvh) * n.S * HD;
  const float* vr = v + (b * n.KV + kvh) * n.S * HD;
  float* dkr = dk + (b * n.KV + kvh) * n.S * HD;
  float* dvr = dv + (b * n.KV + kvh) * n.S * HD;
  for (int64_t h = kvh * n.group(); h < (kvh + 1) * n.group(); ++h) {
    for (int64_t t = 0; t < n.T; ++t) {
      const int64_t row = (b * n.H + h) * n.T + t;
      const float* p = probs + row * n.S;
      const float* qt = q + row * HD;
      const float* dot = dout + (b * n.T + t) * n.H * HD + h * HD;
      L::template dots<HD>(dot, vr, HD, n.S, dp);
      float mean = 0.0f;
      for (int64_t s = 0; s < n.S; ++s) mean = mean + p[s] * dp[s];
      for (int64_t s = 0; s < n.S; ++s) ds[s] = p[s] == 0.0f ? 0.0f : (p[s] * (dp[s] - mean)) * n.scale;
      L::template weighted_sum<HD>(ds, kr, HD, n.S, dq + row * HD);
      for (int64_t s = 0; s < n.S; ++s) {
        if (p[s] == 0.0f) continue;
        L::template axpy<HD>(ds[s], qt, dkr + s * HD);
        L::template axpy<HD>(p[s], dot, dvr + s * HD);
      }
    }
  }
}

// Each pass compiled twice: for the build's baseline and, where the CPU has them, with AVX2 — the same bits
// (attention_lanes.h).
using ForwardFn = void (*)(const Shape&, const float*, const float*, const float*, const Strides3&, int64_t,
                           int64_t, float*, float*);
using BackwardFn = void (*)(const Shape&, const float*, const float*, const float*, const float*,
                            const float*, int64_t, int64_t, float*, float*, float*, float*, float*);

template <int HD>
void forward_plain(const Shape& n, const float* q, const float* k, const float* v, const Strides3& bias,
                   int64_t b, int64_t h, float* probs, float* out) {
  forward_head<HD, lanes::Plain>(n, q, k, v, bias, b, h, probs, out);
}
template <int HD>
void backward_plain(const Shape& n, const float* q, const float* k, const float* v, const float* probs,
                    const float* dout, int64_t b, int64_t kvh, float* dq, float* dk, float* dv, float* dp,
                    float* ds) {
  backward_group<HD, lanes::Plain>(n, q, k, v, probs, dout, b, kvh, dq, dk, dv, dp, ds);
}

#if defined(__x86_64__)
template <int HD>
__attribute__((target("avx2,fma"))) void forward_avx2(const Shape& n, const float* q, const float* k,
                                                      const float* v, const Strides3& bias, int64_t b,
                                                      int64_t h, float* probs, float* out) {
  forward_head<HD, lanes::Avx2>(n, q, k, v, bias, b, h, probs, out);
}
template <int HD>
__attribute__((target("avx2,fma"))) void backward_avx2(const Shape& n, const float* q, const float* k,
                                                       const float* v, const float* probs, const float* dout,
                                                       int64_t b, int64_t kvh, float* dq, float* dk,
                                                       float* dv, float* dp, float* ds) {
  backward_group<HD, lanes::Avx2>(n, q, k, v, probs, dout, b, kvh, dq, dk, dv, dp, ds);
}
#endif

template <int HD>
std::pair<ForwardFn, BackwardFn> passes_of() {
#if defined(__x86_64__)
  if (lanes::has_avx2_fma()) return {forward_avx2<HD>, backward_avx2<HD>};
#endif
  return {forward_plain<HD>, backward_plain<HD>};
}

std::pair<ForwardFn, BackwardFn> passes_for(int64_t hd) {
  switch (hd) {
    case 16:
      return passes_of<16>();
    case 32:
      return passes_of<32>();
    case 64:
      return passes_of<64>();
    case 128:
      return passes_of<128>();
    default:
      return {nullptr, nullptr};
  }
}

Shape shape_of(const at::Tensor& q, const at::Tensor& k) {
  return {q.size(0), q.size(1), k.size(1),
          q.size(2), k.size(2), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
}

struct FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k,
                            const at::Tensor& v, const at::Tensor& bias) {
    const Shape n = shape_of(q, k);
    const int64_t hd = q.size(3);
    auto qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
    auto probs = at::empty({n.B, n.H, n.T, n.S}, q.options());
    auto out = at::empty({n.B, n.T, n.H * hd}, q.options());
    const ForwardFn fn = passes_for(hd).first;
    const Strides3 bo = lanes::strides3(bias, 0, 2, 3);
    const float *qp = qc.data_ptr<float>(), *kp = kc.data_ptr<float>(), *vp = vc.data_ptr<float>();
    float *pp = probs.data_ptr<float>(), *op = out.data_ptr<float>();
    for_row_blocks(n.B * n.H, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / n.H, h = i % n.H, kv = b * n.KV + h / n.group();
        fn(n, qp + i * n.T * hd, kp + kv * n.S * hd, vp + kv * n.S * hd, bo, b, h, pp + i * n.T * n.S, op);
      }
    });
    ctx->save_for_backward({qc, kc, vc, probs});
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &v = saved[2], &probs = saved[3];
    const Shape n = shape_of(q, k);
    const at::Tensor dout = grads[0].contiguous();
    auto dq = at::zeros_like(q), dk = at::zeros_like(k), dv = at::zeros_like(v);
    const BackwardFn fn = passes_for(q.size(3)).second;
    for_row_blocks(n.B * n.KV, [&](int64_t begin, int64_t end) {
      std::vector<float> dp(static_cast<size_t>(n.S)), ds(static_cast<size_t>(n.S));
      for (int64_t i = begin; i < end; ++i)
        fn(n, q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(), probs.data_ptr<float>(),
           dout.data_ptr<float>(), i / n.KV, i % n.KV, dq.data_ptr<float>(), dk.data_ptr<float>(),
           dv.data_ptr<float>(), dp.data(), ds.data());
    });
    return {dq, dk, dv, at::Tensor()};
  }
};

}  // namespace

at::Tensor fused_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& bias) {
  if (!fused_attention_applies(q, k, v, bias))
    throw Error(
        "fused_attention: fp32 CPU q [B, H, T, hd], k and v [B, KV, S, hd] with hd in {16, 32, 64, "
        "128} and a bias broadcastable to [B, 1, T, S] expected");
  return FusedAttentionFunction::apply(q, k, v, bias);
}

bool fused_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& bias) {
  return lanes::attention_shapes_fit(q, k, v, bias);
}

}  // namespace handoff
