#pragma once
// y = W x (+ b) for one input row: the whole of batch-1 decoding's arithmetic, and bound by reading W once.
//
// Why our own: with more than one thread, OpenBLAS's sgemv for one row did not get faster than one thread
// (bench/run_llama_cpp_decode.sh: 10.7 tokens/s at 2 threads vs 11.7 at 1 on a 0.5B-shaped model, while
// llama.cpp went 8.8 → 15.6). Here the rows are split across the threads in blocks (for_row_blocks, OpenMP),
// each thread streaming its block of W with 8-wide FMA accumulators (AVX2+FMA where the CPU has them, plain
// C++ otherwise): 1.05× llama.cpp f32 at 2 threads (docs/results/2026-12-04-decode-openmp/).
//
// The sums are ordered differently from OpenBLAS's, so the decoder uses this only with 2+ threads: one-thread
// decoding — every recorded result — keeps OpenBLAS's sgemv bit for bit. A row's sum does not depend on the
// thread count.
#include <ATen/Tensor.h>

#include <functional>
#include <utility>

namespace handoff {

// W [rows, cols] fp32, bf16 or int8 contiguous on the CPU, x [cols] fp32, bias [rows] fp32 or undefined →
// [rows] fp32. bf16 weights (`--weights bf16`) and int8 ones (`--weights int8`, with their per-row `scale`:
// W ≈ scale[r] · q[r]) are widened to fp32 in registers: half or a quarter of the bytes read, fp32 sums; the
// only kernel for them, whatever the thread count.
at::Tensor gemv_rows_parallel(const at::Tensor& W, const at::Tensor& x, const at::Tensor& bias = {},
                              const at::Tensor& scale = {});

// Per-row symmetric int8 weight-only quantization (llama.cpp's Q8_0 in spirit, with one scale a row instead
// of one per 32 values): q = round(W / s) in [-127, 127], s = max|W[r]| / 127. Returns {q int8, s fp32}.
std::pair<at::Tensor, at::Tensor> quantize_rows_int8(const at::Tensor& W);

// Runs body(begin, end) over [0, rows) in blocks of 16 rows split among at::get_num_threads() threads.
void for_row_blocks(int64_t rows, const std::function<void(int64_t, int64_t)>& body);

// How many distinct threads for_row_blocks runs a 1,024-row job on: at::get_num_threads() when the
// parallelism is real (tests; `handoff info`).
int gemv_worker_threads();

// Whether gemv_rows_parallel is the better path for W at the current thread count.
bool use_parallel_gemv(const at::Tensor& W);

}  // namespace handoff
