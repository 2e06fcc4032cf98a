#include "runtime/kernels.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <ATen/Version.h>

#include "common/error.h"

namespace handoff {

namespace {

constexpr const char* kOpenBlasCore = "Haswell";  // OpenBLAS's AVX2+FMA kernel set
constexpr const char* kAtenCapability = "avx2";

bool cpu_runs_portable_kernels() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;  // other architectures: their own kernels; reproducible on one CPU kind only
#endif
}

std::string openblas_core() {
  using Fn = char* (*)();
  if (auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"))) return fn();
  return "?";
}

std::string aten_capability() {
  // ATen does not export get_cpu_capability() in 1.13; its configuration text names the one in use.
  const std::string cfg = at::show_config();
  const std::string key = "CPU capability usage: ";
  const auto pos = cfg.find(key);
  if (pos == std::string::npos) return "?";
  const auto end = cfg.find('\n', pos);
  return cfg.substr(pos + key.size(), end == std::string::npos ? std::string::npos : end - pos - key.size());
}

}  // namespace

void pin_portable_kernels(char** argv, bool compute) {
  const char* mode = std::getenv("HANDOFF_KERNELS");
  const std::string m = mode ? mode : "portable";
  if (m != "portable" && m != "native")
    throw Error("HANDOFF_KERNELS='" + m + "' is not known", "use portable (the default) or native");
  if (!compute) return;
  bool exec = false;
  // OpenMP threads that spin while idle take the core OpenBLAS's own threads need: with both at 2 threads on
  // 2 cores, SFT ran 3.1 steps/s against 7.0 with one thread (issue 18). libgomp reads the policy while it
  // loads, so it too needs the re-exec; a value the user set wins.
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    exec = true;
  }
  if (m == "portable" && cpu_runs_portable_kernels()) {
    // ATen reads its variable lazily, at the first dispatched op, so setting it here is always early enough.
    setenv("ATEN_CPU_CAPABILITY", kAtenCapability, 0);
    // Unless someone chose OpenBLAS's kernels already (or we re-executed).
    if (!std::getenv("OPENBLAS_CORETYPE")) {
      setenv("OPENBLAS_CORETYPE", kOpenBlasCore, 1);
      exec = true;
    }
  }
  if (!exec) return;
  execv("/proc/self/exe", argv);
  throw Error(std::string("cannot re-execute with portable kernels: ") + std::strerror(errno),
              "set HANDOFF_KERNELS=native and OMP_WAIT_POLICY to run without the re-exec");
}

std::string kernels_summary() {
  const std::string core = openblas_core(), cap = aten_capability();
  const bool portable = core == kOpenBlasCore && cap == "AVX2";
  return std::string(portable ? "portable" : "native") + " (OpenBLAS " + core + ", ATen " + cap + ")";
}

}  // namespace handoff
