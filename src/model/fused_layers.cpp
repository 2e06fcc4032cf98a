#include "model/fused_layers.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <vector>

#include "common/error.h"

namespace handoff {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Rows are cut into chunks of a fixed size, not one per thread: the weight gradient's partial sums are then
// added in the same order whatever the thread count.
constexpr int64_t kChunkRows = 128;

struct RmsNormFunction : public torch::autograd::Function<RmsNormFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& w, double eps) {
    const at::Tensor xc = x.contiguous(), wc = w.contiguous();
    const int64_t n = xc.size(-1), rows = xc.numel() / n;
    at::Tensor y = at::empty_like(xc), inv = at::empty({rows}, xc.options());
    const float *xp = xc.data_ptr<float>(), *wp = wc.data_ptr<float>();
    float *yp = y.data_ptr<float>(), *ip = inv.data_ptr<float>();
    const float e = static_cast<float>(eps);
    at::parallel_for(0, rows, kChunkRows, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* xr = xp + r * n;
        float ss = 0.0f;
        for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
        const float s = 1.0f / std::sqrt(ss / static_cast<float>(n) + e);
        ip[r] = s;
        for (int64_t i = 0; i < n; ++i) yp[r * n + i] = xr[i] * s * wp[i];  // (x · s) · w, as RMSNormImpl
      }
    });
    ctx->save_for_backward({xc, wc, inv});
    return y;
  }

  // y = x·s·w with s = (mean(x²) + eps)^(-1/2): dx = g·w·s − x·s³·(Σ g·w·x)/n; dw = Σ_rows g·x·s.
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &w = saved[1], &inv = saved[2];
    const at::Tensor g = grads[0].contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / n, chunks = (rows + kChunkRows - 1) / kChunkRows;
    at::Tensor dx = at::empty_like(x);
    std::vector<double> partial(static_cast<size_t>(chunks * n), 0.0);
    const float *xp = x.data_ptr<float>(), *wp = w.data_ptr<float>(), *ip = inv.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* dp = dx.data_ptr<float>();
    at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double* dw = partial.data() + c * n;
        for (int64_t r = c * kChunkRows; r < std::min(rows, (c + 1) * kChunkRows); ++r) {
          const float *xr = xp + r * n, *gr = gp + r * n;
          const float s = ip[r];
          float dot = 0.0f;
          for (int64_t i = 0; i < n; ++i) dot += gr[i] * wp[i] * xr[i];
          const float k = s * s * s * dot / static_cast<float>(n);
          for (int64_t i = 0; i < n; ++i) {
            dp[r * n + i] = gr[i] * wp[i] * s - xr[i] * k;
            dw[i] += static_cast<double>(gr[i] * xr[i] * s);
          }
        }
      }
    });
    std::vector<double> total(static_cast<size_t>(n), 0.0);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t i = 0; i < n; ++i) total[i] += partial[c * n + i];
    at::Tensor dw = at::empty({n}, w.options());
    for (int64_t i = 0; i < n; ++i) dw.data_ptr<float>()[i] = static_cast<float>(total[i]);
    return {dx, dw, at::Tensor()};
  }
};

// Pointers to row (b, t) of cos and sin [B or 1, 1, T, hd].
struct Angles {
  const float *cos, *sin;
  int64_t batch_stride, t_stride;
  const float* c(int64_t b, int64_t t) const { return cos + b * batch_stride + t * t_stride; }
  const float* s(int64_t b, int64_t t) const { return sin + b * batch_stride + t * t_stride; }
};

// out = x·cos + rotate_half(x)·sin over every (b, h, t); `inverse` applies the transpose (the backward):
// x·cos − rotate_half(x)·sin with rotate_half's sign moved, i.e. dx1 = g1·c + g2·s, dx2 = g2·c − g1·s.
// Each product and sum is rounded as ATen's ops round them (this file is built without FP contraction).
void rotate(const at::Tensor& x, const Angles& a, bool inverse, float* out) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), hd = x.size(3), half = hd / 2;
  const float* xp = x.data_ptr<float>();
  const int64_t s0 = x.stride(0), s1 = x.stride(1), s2 = x.stride(2);
  at::parallel_for(0, B * H, 4, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / H, h = i % H;
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = xp + b * s0 + h * s1 + t * s2;
        const float *c = a.c(b, t), *s = a.s(b, t);
        float* o = out + ((i * T) + t) * hd;
        for (int64_t j = 0; j < half; ++j) {
          const float x1 = xr[j], x2 = xr[j + half];
          if (!inverse) {
            o[j] = x1 * c[j] + -x2 * s[j];
            o[j + half] = x2 * c[j + half] + x1 * s[j + half];
          } else {
            o[j] = x1 * c[j] + x2 * s[j + half];
            o[j + half] = x2 * c[j + half] + -x1 * s[j];
          }
        }
      }
    }
  });
}

Angles angles_of(const at::Tensor& cos, const at::Tensor& sin) {
  return {cos.data_ptr<float>(), sin.data_ptr<float>(), cos.size(0) == 1 ? 0 : cos.stride(0), cos.stride(2)};
}

struct RopeFunction : public torch::autograd::Function<RopeFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin) {
    const at::Tensor xs = x.stride(3) == 1 ? x : x.contiguous();
    const at::Tensor cc = cos.contiguous(), sc = sin.contiguous();
    at::Tensor out = at::empty(x.sizes(), x.options());
    rotate(xs, angles_of(cc, sc), /*inverse=*/false, out.data_ptr<float>());
    ctx->save_for_backward({cc, sc});
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor g = grads[0].stride(3) == 1 ? grads[0] : grads[0].contiguous();
    at::Tensor dx = at::empty(g.sizes(), g.options());
    rotate(g, angles_of(saved[0], saved[1]), /*inverse=*/true, dx.data_ptr<float>());
    return {dx, at::Tensor(), at::Tensor()};
  }
};

bool fp32_cpu(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat;
}

}  // namespace

bool fused_rms_norm_applies(const at::Tensor& x, const at::Tensor& w) {
  return fp32_cpu(x) && fp32_cpu(w) && x.dim() >= 1 && w.dim() == 1 && x.size(-1) == w.size(0) &&
         x.numel() > 0;
}

bool fused_rope_applies(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!fp32_cpu(x) || !fp32_cpu(cos) || !fp32_cpu(sin) || x.dim() != 4 || cos.dim() != 4) return false;
  const bool batch = cos.size(0) == x.size(0) || cos.size(0) == 1;
  return batch && cos.sizes() == sin.sizes() && cos.size(1) == 1 && cos.size(2) == x.size(2) &&
         cos.size(3) == x.size(3) && x.size(3) % 2 == 0 && x.numel() > 0;
}

at::Tensor fused_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  if (!fused_rms_norm_applies(x, w)) throw Error("fused_rms_norm: fp32 CPU x [..., n] and w [n] expected");
  return RmsNormFunction::apply(x, w, eps);
}

at::Tensor fused_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  if (!fused_rope_applies(x, cos, sin))
    throw Error("fused_rope: fp32 CPU x [B, H, T, hd] and cos, sin [B or 1, 1, T, hd] expected");
  return RopeFunction::apply(x, cos, sin);
}

}  // namespace handoff
