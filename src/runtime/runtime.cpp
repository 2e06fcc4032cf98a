#include "runtime/runtime.h"

#include "common/error.h"

#include <dlfcn.h>
#include <malloc.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

namespace handoff {

void configure_threads(int n) {
  // glibc returns every freed block above the mmap threshold to the kernel, so each training step's
  // activations are mmapped, page-faulted and zeroed anew: measured here, half of a tiny model's step was
  // kernel time. Keeping freed memory in the heap doubled SFT steps/s (bench_train_step).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's maximum on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

std::string blas_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    if (path.find("libblas") != std::string::npos || path.find("openblas") != std::string::npos ||
        path.find("libmkl") != std::string::npos)
      return path;
  }
  return "(no BLAS library mapped)";
}

std::string blas_threads_summary() {
  std::string s = "ATen threads " + std::to_string(at::get_num_threads());
  using GetFn = int (*)();
  if (auto fn = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
    s += ", OpenBLAS threads " + std::to_string(fn());
  using CfgFn = char* (*)();
  if (auto fn = reinterpret_cast<CfgFn>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
    s += ", OpenBLAS " + std::string(fn());
  // PASSIVE unless the user set another (runtime/kernels.h): idle OpenMP threads sleep instead of spinning on
  // the cores OpenBLAS's threads need.
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  s += std::string(", OpenMP wait policy ") + (policy ? policy : "default (spinning)");
  return s;
}

double gemm_gflops(int n, double seconds) {
  auto a = at::randn({n, n}), b = at::randn({n, n});
  auto c = at::mm(a, b);  // warm-up
  int reps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  do {
    at::mm_out(c, a, b);
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  return 2.0 * n * n * static_cast<double>(n) * reps / elapsed / 1e9;
}

c10::Device compute_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!at::hasCUDA())
      throw Error(
          "--compute/--device " + name + ": this build of handoff or this machine has no CUDA",
          "configure with the CUDA libtorch of the Python torch package on a GPU machine (README, GPU)");
    try {
      return c10::Device(name);
    } catch (const c10::Error&) {
      throw Error("'" + name + "' is not a device name (cpu | cuda | cuda:N)");
    }
  }
  throw Error("unknown compute device '" + name + "' (known: cpu, cuda, cuda:N)");
}

}  // namespace handoff
