#include "model/one_token_attention.h"

#include <ATen/ops/empty.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/error.h"
#include "model/gemv.h"
#include "model/lane_dot.h"

namespace handoff {

namespace {

constexpr float kMaskedBias = -1e29f;  // the decoder's mask is -1e30 (decoder.cpp, CausalLMImpl::hidden)

// A float tensor's data and the element strides of three of its dims (the last one's is 1); a broadcast (size
// 1) dim gets stride 0. q, k, v: row, head, position; the bias: row, query, key.
struct Strides3 {
  const float* p;
  int64_t s0, s1, s2;
};
Strides3 strides3(const at::Tensor& x, int d0, int d1, int d2) {
  const auto st = [&](int d) { return x.size(d) == 1 ? int64_t{0} : x.stride(d); };
  return {x.data_ptr<float>(), st(d0), st(d1), st(d2)};
}

struct Dims {
  int64_t B, H, KV, T, S;
  float scale;
};

// Whether key s is left out for a query whose bias row is `row`: masked, while some other key is not.
struct Visibility {
  const float* row;
  int64_t stride;
  bool skip_masked;
  Visibility(const float* r, int64_t st, int64_t S) : row(r), stride(st), skip_masked(false) {
    for (int64_t s = 0; s < S && !skip_masked; ++s) skip_masked = row[s * stride] > kMaskedBias;
  }
  bool hidden(int64_t s) const { return skip_masked && row[s * stride] <= kMaskedBias; }
  float bias(int64_t s) const { return row[s * stride]; }
};

// Query head h of row b: out [B, T, H·HD] gets its softmax-weighted values. `scores` holds S floats. HD is a
// compile-time head size so that the output row stays in registers across the keys.
template <int HD>
void forward_head(const Dims& n, const Strides3& q, const Strides3& k, const Strides3& v,
                  const Strides3& bias, int64_t b, int64_t h, float* scores, float* out) {
  const int64_t kvh = h / (n.H / n.KV);
  const float* kp = k.p + b * k.s0 + kvh * k.s1;
  const float* vp = v.p + b * v.s0 + kvh * v.s1;
  for (int64_t t = 0; t < n.T; ++t) {
    const float* qt = q.p + b * q.s0 + h * q.s1 + t * q.s2;
    const Visibility vis(bias.p + b * bias.s0 + t * bias.s1, bias.s2, n.S);
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < n.S; ++s) {
      scores[s] = vis.hidden(s) ? -std::numeric_limits<float>::infinity()
                                : lane_dot<HD>(qt, kp + s * k.s2) * n.scale + vis.bias(s);
      top = std::max(top, scores[s]);
    }
    float total = 0.0f, acc[HD] = {};
    for (int64_t s = 0; s < n.S; ++s) {
      scores[s] = std::exp(scores[s] - top);
      total += scores[s];
    }
    for (int64_t s = 0; s < n.S; ++s)
      if (scores[s] != 0.0f) lane_axpy<HD>(scores[s], vp + s * v.s2, acc);
    float* o = out + (b * n.T + t) * n.H * HD + h * HD;
    const float inv = 1.0f / total;
    for (int d = 0; d < HD; ++d) o[d] = acc[d] * inv;
  }
}

using ForwardFn = void (*)(const Dims&, const Strides3&, const Strides3&, const Strides3&, const Strides3&,
                           int64_t, int64_t, float*, float*);
ForwardFn kernel_for(int64_t hd) {
  switch (hd) {
    case 16:
      return forward_head<16>;
    case 32:
      return forward_head<32>;
    case 64:
      return forward_head<64>;
    case 128:
      return forward_head<128>;
    default:
      return nullptr;
  }
}

Dims dims_of(const at::Tensor& q, const at::Tensor& k) {
  return {q.size(0), q.size(1), k.size(1),
          q.size(2), k.size(2), static_cast<float>(1.0 / std::sqrt(static_cast<double>(q.size(3))))};
}

}  // namespace

at::Tensor one_token_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const at::Tensor& bias) {
  if (!one_token_attention_applies(q, k, v, bias))
    throw Error(
        "one_token_attention: fp32 CPU q [B, H, 1, hd], k and v [B, KV, S, hd] with hd in {16, 32, 64, "
        "128} and a bias broadcastable to [B, 1, 1, S] expected");
  const Dims n = dims_of(q, k);
  auto out = at::empty({n.B, n.T, n.H * q.size(3)}, q.options());
  const ForwardFn fn = kernel_for(q.size(3));
  const Strides3 qo = strides3(q, 0, 1, 2), ko = strides3(k, 0, 1, 2), vo = strides3(v, 0, 1, 2);
  const Strides3 bo = strides3(bias, 0, 2, 3);
  float* o = out.data_ptr<float>();
  for_row_blocks(n.B * n.H, [&](int64_t begin, int64_t end) {  // OpenMP threads (gemv.h)
    std::vector<float> scores(static_cast<size_t>(n.S));
    for (int64_t i = begin; i < end; ++i) fn(n, qo, ko, vo, bo, i / n.H, i % n.H, scores.data(), o);
  });
  return out;
}

bool one_token_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& bias) {
  for (const auto* t : {&q, &k, &v, &bias})
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat || t->dim() != 4)
      return false;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), KV = k.size(1), S = k.size(2);
  const auto fits = [](int64_t size, int64_t full) { return size == 1 || size == full; };
  return kernel_for(q.size(3)) != nullptr && k.size(3) == q.size(3) && v.sizes() == k.sizes() &&
         k.size(0) == B && KV > 0 && H % KV == 0 && q.stride(3) == 1 && k.stride(3) == 1 &&
         v.stride(3) == 1 && fits(bias.size(0), B) && bias.size(1) == 1 && T == 1 && bias.size(2) == 1 &&
         fits(bias.size(3), S);
}

}  // namespace handoff
