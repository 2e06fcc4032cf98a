#include "model/one_token_attention.h"

#include <ATen/ops/empty.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "common/error.h"
#include "model/gemv.h"
#include "model/lane_dot.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// e^x for the softmax's x = score − max ≤ 0: Cephes' single-precision polynomial (Sleef's and avx_mathfun's
// too; within 2 ulp of e^x), so that eight keys take one pass of AVX2 instead of eight calls into libm. Every
// step is an explicitly fused or exactly rounded operation, in the same order in the scalar form and in the
// eight-lane one, so both give the same bits.
// Below e^-87.3 (and for masked keys' −inf) the weight is 0, as a float's e^x would be.
constexpr float kExpLow = -87.3365447504f, kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

inline float exp_nonpositive(float x) {
  if (!(x >= kExpLow)) return 0.0f;
  const float fx = std::floor(std::fma(x, kLog2e, 0.5f));
  const float r = std::fma(fx, -kLn2Lo, std::fma(fx, -kLn2Hi, x));
  float y = kExpPoly[0];
  for (int i = 1; i < 6; ++i) y = std::fma(y, r, kExpPoly[i]);
  y = std::fma(y, r * r, r) + 1.0f;
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(fx) + 127) << 23;
  float two_fx;
  std::memcpy(&two_fx, &bits, sizeof two_fx);
  return y * two_fx;
}

// Sums of eight lanes folded pairwise, then the tail: the order both forms share (as lane_dot's).
inline float fold_lanes(const float* lane, float tail) {
  return (((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]))) + tail;
}

// scores[s] ← e^(scores[s] − top); returns their sum.
float exp_shifted_plain(float* scores, int64_t n, float top) {
  float lane[8] = {}, tail = 0.0f;
  int64_t s = 0;
  for (; s + 8 <= n; s += 8)
    for (int l = 0; l < 8; ++l) lane[l] += scores[s + l] = exp_nonpositive(scores[s + l] - top);
  for (; s < n; ++s) tail += scores[s] = exp_nonpositive(scores[s] - top);
  return fold_lanes(lane, tail);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float exp_shifted_avx2(float* scores, int64_t n, float top) {
  const __m256 low = _mm256_set1_ps(kExpLow), top8 = _mm256_set1_ps(top);
  __m256 sum = _mm256_setzero_ps();
  int64_t s = 0;
  for (; s + 8 <= n; s += 8) {
    const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(scores + s), top8);
    const __m256 keep = _mm256_cmp_ps(x, low, _CMP_GE_OQ);
    const __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
    const __m256 r =
        _mm256_fmadd_ps(fx, _mm256_set1_ps(-kLn2Lo), _mm256_fmadd_ps(fx, _mm256_set1_ps(-kLn2Hi), x));
    __m256 y = _mm256_set1_ps(kExpPoly[0]);
    for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpPoly[i]));
    y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
    const __m256 v = _mm256_and_ps(keep, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
    _mm256_storeu_ps(scores + s, v);
    sum = _mm256_add_ps(sum, v);
  }
  float lane[8], tail = 0.0f;
  _mm256_storeu_ps(lane, sum);
  for (; s < n; ++s) tail += scores[s] = exp_nonpositive(scores[s] - top);
  return fold_lanes(lane, tail);
}

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

float exp_shifted_fast(float* scores, int64_t n, float top) {
#if defined(__x86_64__)
  if (has_avx2_fma()) return exp_shifted_avx2(scores, n, top);
#endif
  return exp_shifted_plain(scores, n, top);
}

// out[s] = q · k[s] for the S keys at `stride` floats apart (lane_dot's order).
template <int HD>
void dots_plain(const float* q, const float* k, int64_t stride, int64_t S, float* out) {
  for (int64_t s = 0; s < S; ++s) out[s] = lane_dot<HD>(q, k + s * stride);
}

#if defined(__x86_64__)
// Eight keys at a time: each key's eight lane sums in one register, then three rounds of horizontal adds
// reduce the eight registers to the eight dots in lane_dot's order ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)):
// one reduction per eight keys instead of one per key.
template <int HD>
__attribute__((target("avx2,fma"))) void dots_avx2(const float* q, const float* k, int64_t stride, int64_t S,
                                                   float* out) {
  __m256 qv[HD / 8];
  for (int d = 0; d < HD / 8; ++d) qv[d] = _mm256_loadu_ps(q + 8 * d);
  int64_t s = 0;
  for (; s + 8 <= S; s += 8) {
    __m256 p[8];
    for (int j = 0; j < 8; ++j) {
      const float* kj = k + (s + j) * stride;
      p[j] = _mm256_mul_ps(_mm256_loadu_ps(kj), qv[0]);
      for (int d = 1; d < HD / 8; ++d)
        p[j] = _mm256_add_ps(p[j], _mm256_mul_ps(_mm256_loadu_ps(kj + 8 * d), qv[d]));
    }
    const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(p[0], p[1]), _mm256_hadd_ps(p[2], p[3]));
    const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(p[4], p[5]), _mm256_hadd_ps(p[6], p[7]));
    _mm256_storeu_ps(out + s,
                     _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31)));
  }
  for (; s < S; ++s) out[s] = lane_dot<HD>(q, k + s * stride);
}
#endif

// acc = Σ_s w[s] · v[s] over the keys with a weight (a product, then a sum, per value: the same bits in
// any width).
template <int HD>
void weighted_sum_plain(const float* w, const float* v, int64_t stride, int64_t S, float* acc) {
  for (int64_t s = 0; s < S; ++s)
    if (w[s] != 0.0f) lane_axpy<HD>(w[s], v + s * stride, acc);
}

#if defined(__x86_64__)
// The same with the running sums in registers (the compiler kept them as scalars).
template <int HD>
__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* w, const float* v, int64_t stride,
                                                           int64_t S, float* acc) {
  __m256 a[HD / 8];
  for (int d = 0; d < HD / 8; ++d) a[d] = _mm256_loadu_ps(acc + 8 * d);
  for (int64_t s = 0; s < S; ++s) {
    if (w[s] == 0.0f) continue;
    const __m256 ws = _mm256_set1_ps(w[s]);
    const float* vs = v + s * stride;
    for (int d = 0; d < HD / 8; ++d)
      a[d] = _mm256_add_ps(a[d], _mm256_mul_ps(ws, _mm256_loadu_ps(vs + 8 * d)));
  }
  for (int d = 0; d < HD / 8; ++d) _mm256_storeu_ps(acc + 8 * d, a[d]);
}
#endif

// Query head h of row b: out [B, T, H·HD] gets its softmax-weighted values. `scores` holds S floats. HD is a
// compile-time head size so that the output row stays in registers across the keys.
template <int HD, void (*Dots)(const float*, const float*, int64_t, int64_t, float*),
          float (*Exp)(float*, int64_t, float),
          void (*WeightedSum)(const float*, const float*, int64_t, int64_t, float*)>
__attribute__((always_inline)) inline void forward_head(const Dims& n, const Strides3& q, const Strides3& k,
                                                        const Strides3& v, const Strides3& bias, int64_t b,
                                                        int64_t h, float* scores, float* out) {
  const int64_t kvh = h / (n.H / n.KV);
  const float* kp = k.p + b * k.s0 + kvh * k.s1;
  const float* vp = v.p + b * v.s0 + kvh * v.s1;
  for (int64_t t = 0; t < n.T; ++t) {
    const float* qt = q.p + b * q.s0 + h * q.s1 + t * q.s2;
    const Visibility vis(bias.p + b * bias.s0 + t * bias.s1, bias.s2, n.S);
    Dots(qt, kp, k.s2, n.S, scores);
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t s = 0; s < n.S; ++s) {
      scores[s] = vis.hidden(s) ? -std::numeric_limits<float>::infinity() : scores[s] * n.scale + vis.bias(s);
      top = std::max(top, scores[s]);
    }
    const float total = Exp(scores, n.S, top);
    float acc[HD] = {};
    WeightedSum(scores, vp, v.s2, n.S, acc);
    float* o = out + (b * n.T + t) * n.H * HD + h * HD;
    const float inv = 1.0f / total;
    for (int d = 0; d < HD; ++d) o[d] = acc[d] * inv;
  }
}

// The same source compiled twice: for the build's baseline and, where the CPU has them, with AVX2 (eight
// lanes a step instead of four). The file is built with -ffp-contract=off (CMakeLists.txt), so the AVX2 copy
// does not fuse a multiply into its add, and both give the same bits.
template <int HD>
void forward_head_plain(const Dims& n, const Strides3& q, const Strides3& k, const Strides3& v,
                        const Strides3& bias, int64_t b, int64_t h, float* scores, float* out) {
  forward_head<HD, dots_plain<HD>, exp_shifted_plain, weighted_sum_plain<HD>>(n, q, k, v, bias, b, h, scores,
                                                                              out);
}

#if defined(__x86_64__)
template <int HD>
__attribute__((target("avx2,fma"))) void forward_head_avx2(const Dims& n, const Strides3& q,
                                                           const Strides3& k, const Strides3& v,
                                                           const Strides3& bias, int64_t b, int64_t h,
                                                           float* scores, float* out) {
  forward_head<HD, dots_avx2<HD>, exp_shifted_avx2, weighted_sum_avx2<HD>>(n, q, k, v, bias, b, h, scores,
                                                                           out);
}
#endif

using ForwardFn = void (*)(const Dims&, const Strides3&, const Strides3&, const Strides3&, const Strides3&,
                           int64_t, int64_t, float*, float*);

template <int HD>
ForwardFn kernel_of(bool portable) {
#if defined(__x86_64__)
  if (!portable && has_avx2_fma()) return forward_head_avx2<HD>;
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
  return portable ? exp_shifted_plain(scores, n, top) : exp_shifted_fast(scores, n, top);
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
