#include "model/gemv.h"

#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include "common/error.h"

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

float dot_plain(const float* w, const float* x, int64_t n) {
  float acc[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 32; ++l) acc[l] += w[i + l] * x[i + l];
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += w[i + l] * x[i + l];
  float tail = 0;
  for (; i < n; ++i) tail += w[i] * x[i];
  return fold(acc, tail);
}

#if defined(__x86_64__)
typedef float v8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"), always_inline)) inline v8 load(const float* p) {
  v8 v;
  __builtin_memcpy(&v, p, 32);
  return v;
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* w, const float* x, int64_t n) {
  v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += load(w + i) * load(x + i);
    a1 += load(w + i + 8) * load(x + i + 8);
    a2 += load(w + i + 16) * load(x + i + 16);
    a3 += load(w + i + 24) * load(x + i + 24);
  }
  for (; i + 8 <= n; i += 8) a0 += load(w + i) * load(x + i);
  float acc[32];
  __builtin_memcpy(acc, &a0, 32);
  __builtin_memcpy(acc + 8, &a1, 32);
  __builtin_memcpy(acc + 16, &a2, 32);
  __builtin_memcpy(acc + 24, &a3, 32);
  float tail = 0;
  for (; i < n; ++i) tail += w[i] * x[i];
  return fold(acc, tail);
}

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

}  // namespace

at::Tensor gemv_rows_parallel(const at::Tensor& W, const at::Tensor& x, const at::Tensor& bias) {
  if (W.dim() != 2 || x.dim() != 1 || W.size(1) != x.size(0) || W.scalar_type() != at::kFloat ||
      x.scalar_type() != at::kFloat || !W.is_cpu() || !W.is_contiguous())
    throw Error("gemv_rows_parallel: needs W [rows, cols] and x [cols], fp32 contiguous on the CPU");
  const at::Tensor xc = x.contiguous();
  const int64_t rows = W.size(0), cols = W.size(1);
  at::Tensor y = at::empty({rows}, W.options());
  const float* w = W.data_ptr<float>();
  const float* xp = xc.data_ptr<float>();
  const float* b = bias.defined() ? bias.contiguous().data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
#if defined(__x86_64__)
  const auto dot = has_avx2_fma() ? dot_avx2 : dot_plain;
#else
  const auto dot = dot_plain;
#endif
  // Blocks of 16 rows: enough work per task, and contiguous runs of W per thread.
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) yp[r] = dot(w + r * cols, xp, cols) + (b ? b[r] : 0.0f);
  });
  return y;
}

bool use_parallel_gemv(const at::Tensor& W) {
  return at::get_num_threads() > 1 && W.scalar_type() == at::kFloat && W.is_cpu() && W.is_contiguous() &&
         W.numel() >= (int64_t{1} << 16);
}

}  // namespace handoff
