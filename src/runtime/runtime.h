#pragma once
// Process-wide compute setup: thread pools (ATen's OpenMP and OpenBLAS's own pthreads), BLAS identity, GEMM
// peak.
#include <string>

#include <c10/core/Device.h>

namespace handoff {

// Sets ATen's intra-op threads and OpenBLAS's pthread pool to the same count (OpenBLAS ignores
// at::set_num_threads; two pools of 2 on 2 cores oversubscribe). n <= 0 → number of cores.
void configure_threads(int n);  // also tunes malloc for training (see runtime.cpp)

// The shared library that provides BLAS in this process (from /proc/self/maps), e.g.
// ".../openblas-pthread/libblas.so.3".
std::string blas_library();
// "cpu", "cuda" or "cuda:N" → a torch device; throws Error when the name is unknown or this build/machine has
// no CUDA (a CPU-only libtorch, no GPU), instead of libtorch's exception deep inside a load.
c10::Device compute_device(const std::string& name);
std::string blas_threads_summary();

// Achieved GFLOP/s of a square fp32 GEMM of size n, repeated for about `seconds`.
double gemm_gflops(int n, double seconds);

}  // namespace handoff
