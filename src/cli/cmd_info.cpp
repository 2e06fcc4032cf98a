// `handoff info`: which BLAS is in use, thread counts, and a GEMM probe (the machine's achievable peak).
#include <cstdio>

#include <torch/version.h>

#include "cli/commands.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"

namespace handoff::cli {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Print the compute setup: BLAS library, threads, a 1-second GEMM GFLOP/s probe");
  auto threads = std::make_shared<int>(0);
  auto size = std::make_shared<int>(1024);
  cmd->add_option("--threads", *threads, "Threads for ATen and OpenBLAS (0 = all cores)");
  cmd->add_option("--gemm-size", *size, "Square GEMM size for the probe")->check(CLI::Range(64, 8192));
  cmd->callback([threads, size] {
    configure_threads(*threads);
    std::printf("handoff 0.1.0, libtorch %s\n", TORCH_VERSION);
    std::printf("BLAS: %s\n", blas_library().c_str());
    std::printf("threads: %s\n", blas_threads_summary().c_str());
    std::printf("kernels: %s (HANDOFF_KERNELS=native|portable; see runtime/kernels.h)\n",
                kernels_summary().c_str());
    const double g = gemm_gflops(*size, 1.0);
    std::printf("GEMM %dx%d fp32: %.1f GFLOP/s\n", *size, *size, g);
  });
}

}  // namespace handoff::cli
