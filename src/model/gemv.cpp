#include "model/gemv.h"

#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/round.h>
#include <ATen/ops/where.h>
#include <omp.h>

#include <algorithm>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"

#ifndef _OPENMP
#error "gemv.cpp must be compiled with OpenMP (CMakeLists.txt): without it the row blocks run on one thread"
#endif

namespace handoff {

namespace {

// Four independent 8-lane partial sums across the row (one FMA chain would wait on its own latency: ~24 GB/s
// of weights per core), folded 4 → 1 and then lane-pairwise: the same order on both CPU paths below, so the
// AVX2 loop and the plain one agree to the last bit.
inline float fold(const float* acc, float tail) {  // acc[32]
  float v[8];
  for (int l = 0; l < 8; ++l) v[l] = (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]);
  return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])) + tail;
}

// Weights are widened to fp32 one at a time (plain) or eight at a time (AVX2): fp32 as is, bf16 (the top 16
// bits of an fp32) and int8 (`--weights int8`, its row's scale applied once after the sum) — half and a
// quarter of the bytes read, the same fp32 sums in the same order for every format.
inline float widen(float w) {
  return w;
}
inline float widen(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}
inline float widen(int8_t q) {
  return static_cast<float>(q);
}

template <class T>
float dot_plain(const T* w, const float* x, int64_t n) {
  float acc[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 32; ++l) acc[l] += widen(w[i + l]) * x[i + l];
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += widen(w[i + l]) * x[i + l];
  float tail = 0;
  for (; i < n; ++i) tail += widen(w[i]) * x[i];
  return fold(acc, tail);
}

#if defined(__x86_64__)
#include <immintrin.h>

typedef float v8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"), always_inline)) inline v8 load8(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, 32);
  return v;
}

// Intrinsics, not __builtin_convertvector: GCC splits that widening into two halves (bf16) or scalar code
// (int8), 1.4x and 5.7x slower per token on a 0.5B-shaped model (bench_load).
__attribute__((target("avx2,fma"), always_inline)) inline v8 load8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return reinterpret_cast<v8>(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // vpmovzxwd + vpslld
}

__attribute__((target("avx2,fma"), always_inline)) inline v8 load8(const int8_t* p) {
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return reinterpret_cast<v8>(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));  // vpmovsxbd + vcvtdq2ps
}

template <class T>
__attribute__((target("avx2,fma"))) float dot_avx2(const T* w, const float* x, int64_t n) {
  v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += load8(w + i) * load8(x + i);
    a1 += load8(w + i + 8) * load8(x + i + 8);
    a2 += load8(w + i + 16) * load8(x + i + 16);
    a3 += load8(w + i + 24) * load8(x + i + 24);
  }
  for (; i + 8 <= n; i += 8) a0 += load8(w + i) * load8(x + i);
  float acc[32];
  __builtin_memcpy(acc, &a0, 32);
  __builtin_memcpy(acc + 8, &a1, 32);
  __builtin_memcpy(acc + 16, &a2, 32);
  __builtin_memcpy(acc + 24, &a3, 32);
  float tail = 0;
  for (; i < n; ++i) tail += widen(w[i]) * x[i];
  return fold(acc, tail);
}

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

}  // namespace

// Contiguous blocks of 16 rows (enough work per thread, and one run of W each) over at::get_num_threads()
// OpenMP threads. Our own pragma, not at::parallel_for: that is an inline template which runs serially in any
// file compiled without OpenMP (its `#ifdef _OPENMP`), as this one was until gemv_worker_threads() caught it
// — every "2-thread" decode had read the weights on one core. This file is built with OpenMP
// (CMakeLists.txt).
void for_row_blocks(int64_t rows, const std::function<void(int64_t, int64_t)>& body) {
  const int64_t blocks = (rows + 15) / 16;
  const int threads = static_cast<int>(std::min<int64_t>(at::get_num_threads(), blocks));
  if (threads <= 1 || omp_in_parallel()) return body(0, rows);
    // num_threads: the count ATen was given, also where torch brings an OpenMP runtime of its own (pip
    // wheels).
#pragma omp parallel num_threads(threads)
  {
    const int64_t n = omp_get_num_threads(), t = omp_get_thread_num();
    const int64_t per = (blocks + n - 1) / n;
    const int64_t begin = std::min(rows, t * per * 16), end = std::min(rows, (t + 1) * per * 16);
    if (begin < end) body(begin, end);
  }
}

int gemv_worker_threads() {
  std::mutex m;
  std::set<std::thread::id> seen;
  for_row_blocks(1024, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(m);
    seen.insert(std::this_thread::get_id());
  });
  return static_cast<int>(seen.size());
}

namespace {

// y[r] = scale[r] · (w[r] · x) + b[r] over the rows.
template <class T>
void rows_parallel(const T* w, int64_t rows, int64_t cols, const float* x, const float* scale, const float* b,
                   float* y) {
#if defined(__x86_64__)
  const auto dot = has_avx2_fma() ? dot_avx2<T> : dot_plain<T>;
#else
  const auto dot = dot_plain<T>;
#endif
  for_row_blocks(rows, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float d = dot(w + r * cols, x, cols);
      y[r] = (scale ? d * scale[r] : d) + (b ? b[r] : 0.0f);
    }
  });
}

}  // namespace

at::Tensor gemv_rows_parallel(const at::Tensor& W, const at::Tensor& x, const at::Tensor& bias,
                              const at::Tensor& scale) {
  const auto type = W.scalar_type();
  const bool known = type == at::kFloat || type == at::kBFloat16 || type == at::kChar;
  if (W.dim() != 2 || x.dim() != 1 || W.size(1) != x.size(0) || !known || x.scalar_type() != at::kFloat ||
      !W.is_cpu() || !W.is_contiguous())
    throw Error(
        "gemv_rows_parallel: needs W [rows, cols] fp32, bf16 or int8 and x [cols] fp32, contiguous on the "
        "CPU");
  const int64_t rows = W.size(0), cols = W.size(1);
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != rows || bias.scalar_type() != at::kFloat))
    throw Error("gemv_rows_parallel: the bias must be [rows] fp32");
  if ((type == at::kChar) != scale.defined() ||
      (scale.defined() && (scale.dim() != 1 || scale.size(0) != rows || scale.scalar_type() != at::kFloat)))
    throw Error("gemv_rows_parallel: int8 weights need their row scales [rows] fp32 (and only they do)");
  // All held for the whole call: a pointer into a temporary contiguous() copy would dangle.
  const at::Tensor xc = x.contiguous();
  const at::Tensor bc = bias.defined() ? bias.contiguous() : at::Tensor();
  const at::Tensor sc = scale.defined() ? scale.contiguous() : at::Tensor();
  at::Tensor y = at::empty({rows}, W.options().dtype(at::kFloat));
  const float* xp = xc.data_ptr<float>();
  const float* b = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  if (type == at::kBFloat16)
    rows_parallel(reinterpret_cast<const uint16_t*>(W.data_ptr<at::BFloat16>()), rows, cols, xp, nullptr, b,
                  yp);
  else if (type == at::kChar)
    rows_parallel(W.data_ptr<int8_t>(), rows, cols, xp, sc.data_ptr<float>(), b, yp);
  else
    rows_parallel(W.data_ptr<float>(), rows, cols, xp, nullptr, b, yp);
  return y;
}

std::pair<at::Tensor, at::Tensor> quantize_rows_int8(const at::Tensor& W) {
  if (W.dim() != 2 || !W.is_floating_point()) throw Error("quantize_rows_int8: needs a 2-D float matrix");
  const at::Tensor w = W.detach().to(at::kFloat);
  at::Tensor scale = w.abs().amax(1) / 127.0;
  scale = at::where(scale > 0, scale, at::ones_like(scale));  // an all-zero row: q = 0 whatever the scale
  const at::Tensor q = at::round(w / scale.unsqueeze(1)).clamp(-127, 127).to(at::kChar).contiguous();
  return {q, scale.contiguous()};
}

bool use_parallel_gemv(const at::Tensor& W) {
  // Not under autograd: the kernel records no graph, so a gradient through it would be silently lost.
  if (at::GradMode::is_enabled() && W.requires_grad()) return false;
  return at::get_num_threads() > 1 && W.scalar_type() == at::kFloat && W.is_cpu() && W.is_contiguous() &&
         W.numel() >= (int64_t{1} << 16);
}

}  // namespace handoff
