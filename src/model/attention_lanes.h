#pragma once
// The building blocks of the attention kernels (model/one_token_attention.h, model/fused_attention.h): dot
// products, softmax exponentials and weighted sums over a head's HD values, in a baseline form and, where the
// CPU has it, an AVX2 form. Each pair computes the same bits: every fused multiply-add is written out, the
// files that include this header are built with -ffp-contract=off (CMakeLists.txt) so the compiler adds none,
// and reductions run in one fixed order — lane-wise partial sums folded as adjacent pairs, the order in which
// AVX2's horizontal adds reduce eight dots at once. Lane-wise sums vectorise without reassociation (one
// running sum would not, and would wait on its own add latency).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <ATen/Tensor.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace handoff::lanes {

template <int HD>
inline float lane_dot(const float* a, const float* b) {
  static_assert(HD % 8 == 0, "head sizes of a multiple of 8");
  float lane[8];
  for (int l = 0; l < 8; ++l) lane[l] = a[l] * b[l];
  for (int d = 8; d < HD; d += 8)
    for (int l = 0; l < 8; ++l) lane[l] = lane[l] + a[d + l] * b[d + l];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// y += a · x over HD values.
template <int HD>
inline void lane_axpy(float a, const float* x, float* y) {
  for (int d = 0; d < HD; ++d) y[d] += a * x[d];
}

constexpr float kMaskedBias = -1e29f;  // the decoder's mask is -1e30 (decoder.cpp, CausalLMImpl::hidden)

// A float tensor's data and the element strides of three of its dims (the last one's is 1); a broadcast (size
// 1) dim gets stride 0. q, k, v: row, head, position; the bias: row, query, key.
struct Strides3 {
  const float* p;
  int64_t s0, s1, s2;
};
inline Strides3 strides3(const at::Tensor& x, int d0, int d1, int d2) {
  const auto st = [&](int d) { return x.size(d) == 1 ? int64_t{0} : x.stride(d); };
  return {x.data_ptr<float>(), st(d0), st(d1), st(d2)};
}

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
// Below e^-87.3 (and for masked keys' −inf) the weight is 0, as a float's e^x would be; NaN stays NaN.
constexpr float kExpLow = -87.3365447504f, kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

inline float exp_nonpositive(float x) {
  if (std::isnan(x)) return x;  // a NaN score stays NaN (it is not a masked key), as e^x would
  if (x < kExpLow) return 0.0f;
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

// Sums of eight lanes folded as ((0+4)+(1+5))+((2+6)+(3+7)), then the tail: the order both forms of the
// exponentials' sum share.
inline float fold_lanes(const float* lane, float tail) {
  return (((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]))) + tail;
}

// scores[s] ← e^(scores[s] − top); returns their sum.
inline float exp_shifted_plain(float* scores, int64_t n, float top) {
  float lane[8] = {}, tail = 0.0f;
  int64_t s = 0;
  for (; s + 8 <= n; s += 8)
    for (int l = 0; l < 8; ++l) lane[l] += scores[s + l] = exp_nonpositive(scores[s + l] - top);
  for (; s < n; ++s) tail += scores[s] = exp_nonpositive(scores[s] - top);
  return fold_lanes(lane, tail);
}

#if defined(__x86_64__)
// e^(x − top) of eight scores (exp_nonpositive's steps, lane by lane: the same bits).
__attribute__((target("avx2,fma"), always_inline)) inline __m256 exp8_shifted_avx2(__m256 scores,
                                                                                   __m256 top8) {
  const __m256 x = _mm256_sub_ps(scores, top8);
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLow), _CMP_GE_OQ);
  const __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
  const __m256 r =
      _mm256_fmadd_ps(fx, _mm256_set1_ps(-kLn2Lo), _mm256_fmadd_ps(fx, _mm256_set1_ps(-kLn2Hi), x));
  __m256 y = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kExpPoly[i]));
  y = _mm256_add_ps(_mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_blendv_ps(_mm256_and_ps(keep, _mm256_mul_ps(y, _mm256_castsi256_ps(e))), x,
                          _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// The last few scores also take the eight-lane form (padded with `top`), their sum still added one by one
// after the lanes, in exp_shifted_plain's order.
inline __attribute__((target("avx2,fma"))) float exp_shifted_avx2(float* scores, int64_t n, float top) {
  const __m256 top8 = _mm256_set1_ps(top);
  __m256 sum = _mm256_setzero_ps();
  int64_t s = 0;
  for (; s + 8 <= n; s += 8) {
    const __m256 v = exp8_shifted_avx2(_mm256_loadu_ps(scores + s), top8);
    _mm256_storeu_ps(scores + s, v);
    sum = _mm256_add_ps(sum, v);
  }
  float lane[8], tail = 0.0f;
  _mm256_storeu_ps(lane, sum);
  if (s < n) {
    float last[8];
    for (int j = 0; j < 8; ++j) last[j] = s + j < n ? scores[s + j] : top;
    _mm256_storeu_ps(last, exp8_shifted_avx2(_mm256_loadu_ps(last), top8));
    for (int j = 0; s < n; ++j, ++s) tail += scores[s] = last[j];
  }
  return fold_lanes(lane, tail);
}

inline bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

inline float exp_shifted_fast(float* scores, int64_t n, float top) {
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
// The dots of keys k[0 .. n) (n ≤ 8) against the query's registers, as eight lanes: key j's dot in lane j
// (lanes from n on are 0). Each key's eight lane sums in one register, then three rounds of horizontal adds
// reduce the eight registers to the eight dots in lane_dot's order ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
template <int HD>
__attribute__((target("avx2,fma"), always_inline)) inline __m256 dots8_avx2(const __m256* qv, const float* k,
                                                                            int64_t stride, int64_t n) {
  __m256 p[8];
  for (int j = 0; j < 8; ++j) {
    if (j >= n) {
      p[j] = _mm256_setzero_ps();
      continue;
    }
    const float* kj = k + j * stride;
    p[j] = _mm256_mul_ps(_mm256_loadu_ps(kj), qv[0]);
    for (int d = 1; d < HD / 8; ++d)
      p[j] = _mm256_add_ps(p[j], _mm256_mul_ps(_mm256_loadu_ps(kj + 8 * d), qv[d]));
  }
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(p[0], p[1]), _mm256_hadd_ps(p[2], p[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(p[4], p[5]), _mm256_hadd_ps(p[6], p[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// Eight keys at a time (dots8_avx2): one reduction per eight keys instead of one per key; the last few keys
// take the same eight-lane reduction with empty lanes, so a short range (a decoding step's few own keys)
// pays no scalar dots.
template <int HD>
__attribute__((target("avx2,fma"))) void dots_avx2(const float* q, const float* k, int64_t stride, int64_t S,
                                                   float* out) {
  __m256 qv[HD / 8];
  for (int d = 0; d < HD / 8; ++d) qv[d] = _mm256_loadu_ps(q + 8 * d);
  int64_t s = 0;
  for (; s + 8 <= S; s += 8) _mm256_storeu_ps(out + s, dots8_avx2<HD>(qv, k + s * stride, stride, 8));
  if (s < S) {
    float last[8];
    _mm256_storeu_ps(last, dots8_avx2<HD>(qv, k + s * stride, stride, S - s));
    for (int64_t j = 0; s + j < S; ++j) out[s + j] = last[j];
  }
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

// What both kernels take: fp32 CPU q [B, H, T, hd], k and v [B, KV, S, hd] with hd in {16, 32, 64, 128} and H
// a multiple of KV, and an additive bias broadcastable to [B, 1, T, S].
inline bool attention_shapes_fit(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                 const at::Tensor& bias) {
  for (const auto* t : {&q, &k, &v, &bias})
    if (!t->defined() || !t->device().is_cpu() || t->scalar_type() != at::kFloat || t->dim() != 4)
      return false;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), KV = k.size(1), S = k.size(2), hd = q.size(3);
  const auto fits = [](int64_t size, int64_t full) { return size == 1 || size == full; };
  return (hd == 16 || hd == 32 || hd == 64 || hd == 128) && k.size(3) == hd && v.sizes() == k.sizes() &&
         k.size(0) == B && KV > 0 && H % KV == 0 && T > 0 && S > 0 && fits(bias.size(0), B) &&
         bias.size(1) == 1 && fits(bias.size(2), T) && fits(bias.size(3), S);
}

// The two forms as one type each, so that a kernel's body is written once and instantiated per form.
struct Plain {
  template <int HD>
  static void dots(const float* q, const float* k, int64_t stride, int64_t S, float* out) {
    dots_plain<HD>(q, k, stride, S, out);
  }
  static float exp_shifted(float* scores, int64_t n, float top) { return exp_shifted_plain(scores, n, top); }
  template <int HD>
  static void weighted_sum(const float* w, const float* v, int64_t stride, int64_t S, float* acc) {
    weighted_sum_plain<HD>(w, v, stride, S, acc);
  }
  template <int HD>
  static void axpy(float a, const float* x, float* y) {
    lane_axpy<HD>(a, x, y);
  }
};

#if defined(__x86_64__)
struct Avx2 {
  template <int HD>
  __attribute__((target("avx2,fma"))) static void dots(const float* q, const float* k, int64_t stride,
                                                       int64_t S, float* out) {
    dots_avx2<HD>(q, k, stride, S, out);
  }
  __attribute__((target("avx2,fma"))) static float exp_shifted(float* scores, int64_t n, float top) {
    return exp_shifted_avx2(scores, n, top);
  }
  template <int HD>
  __attribute__((target("avx2,fma"))) static void weighted_sum(const float* w, const float* v, int64_t stride,
                                                               int64_t S, float* acc) {
    weighted_sum_avx2<HD>(w, v, stride, S, acc);
  }
  // y += a · x (a product, then a sum, per value).
  template <int HD>
  __attribute__((target("avx2,fma"))) static void axpy(float a, const float* x, float* y) {
    const __m256 av = _mm256_set1_ps(a);
    for (int d = 0; d < HD / 8; ++d)
      _mm256_storeu_ps(y + 8 * d, _mm256_add_ps(_mm256_loadu_ps(y + 8 * d),
                                                _mm256_mul_ps(av, _mm256_loadu_ps(x + 8 * d))));
  }
};
#endif

}  // namespace handoff::lanes
