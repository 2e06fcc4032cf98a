#include "model/gemv.h"

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
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

// bf16 weights (the top 16 bits of an fp32): widened to fp32 in registers, so W is read at 2 bytes a weight.
inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

float dot_bf16_plain(const uint16_t* w, const float* x, int64_t n) {
  float acc[32] = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int l = 0; l < 32; ++l) acc[l] += bf16_to_float(w[i + l]) * x[i + l];
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += bf16_to_float(w[i + l]) * x[i + l];
  float tail = 0;
  for (; i < n; ++i) tail += bf16_to_float(w[i]) * x[i];
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

typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"), always_inline)) inline v8 load_bf16(const uint16_t* p) {
  u16x8 h;
  __builtin_memcpy(&h, p, 16);
  const u32x8 bits = __builtin_convertvector(h, u32x8) << 16;  // vpmovzxwd + vpslld
  v8 v;
  __builtin_memcpy(&v, &bits, 32);
  return v;
}

__attribute__((target("avx2,fma"))) float dot_bf16_avx2(const uint16_t* w, const float* x, int64_t n) {
  v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 += load_bf16(w + i) * load(x + i);
    a1 += load_bf16(w + i + 8) * load(x + i + 8);
    a2 += load_bf16(w + i + 16) * load(x + i + 16);
    a3 += load_bf16(w + i + 24) * load(x + i + 24);
  }
  for (; i + 8 <= n; i += 8) a0 += load_bf16(w + i) * load(x + i);
  float acc[32];
  __builtin_memcpy(acc, &a0, 32);
  __builtin_memcpy(acc + 8, &a1, 32);
  __builtin_memcpy(acc + 16, &a2, 32);
  __builtin_memcpy(acc + 24, &a3, 32);
  float tail = 0;
  for (; i < n; ++i) tail += bf16_to_float(w[i]) * x[i];
  return fold(acc, tail);
}

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}
#endif

}  // namespace

at::Tensor gemv_rows_parallel(const at::Tensor& W, const at::Tensor& x, const at::Tensor& bias) {
  const bool bf16 = W.scalar_type() == at::kBFloat16;
  if (W.dim() != 2 || x.dim() != 1 || W.size(1) != x.size(0) || (W.scalar_type() != at::kFloat && !bf16) ||
      x.scalar_type() != at::kFloat || !W.is_cpu() || !W.is_contiguous())
    throw Error(
        "gemv_rows_parallel: needs W [rows, cols] fp32 or bf16 and x [cols] fp32, contiguous on the CPU");
  const int64_t rows = W.size(0), cols = W.size(1);
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != rows || bias.scalar_type() != at::kFloat))
    throw Error("gemv_rows_parallel: the bias must be [rows] fp32");
  // Both held for the whole call: a pointer into a temporary contiguous() copy would dangle.
  const at::Tensor xc = x.contiguous();
  const at::Tensor bc = bias.defined() ? bias.contiguous() : at::Tensor();
  at::Tensor y = at::empty({rows}, W.options().dtype(at::kFloat));
  const float* xp = xc.data_ptr<float>();
  const float* b = bc.defined() ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
#if defined(__x86_64__)
  const bool avx2 = has_avx2_fma();
  const auto dot_f32 = avx2 ? dot_avx2 : dot_plain;
  const auto dot_bf16 = avx2 ? dot_bf16_avx2 : dot_bf16_plain;
#else
  const auto dot_f32 = dot_plain;
  const auto dot_bf16 = dot_bf16_plain;
#endif
  // Blocks of 16 rows: enough work per task, and contiguous runs of W per thread.
  if (bf16) {
    const auto* w = reinterpret_cast<const uint16_t*>(W.data_ptr<at::BFloat16>());
    const auto dot = dot_bf16;
    at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) yp[r] = dot(w + r * cols, xp, cols) + (b ? b[r] : 0.0f);
    });
    return y;
  }
  const float* w = W.data_ptr<float>();
  const auto dot = dot_f32;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) yp[r] = dot(w + r * cols, xp, cols) + (b ? b[r] : 0.0f);
  });
  return y;
}

bool use_parallel_gemv(const at::Tensor& W) {
  // Not under autograd: the kernel records no graph, so a gradient through it would be silently lost.
  if (at::GradMode::is_enabled() && W.requires_grad()) return false;
  return at::get_num_threads() > 1 && W.scalar_type() == at::kFloat && W.is_cpu() && W.is_contiguous() &&
         W.numel() >= (int64_t{1} << 16);
}

}  // namespace handoff
