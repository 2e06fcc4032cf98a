// `handoff info`: which BLAS is in use, thread counts, and a GEMM probe (the machine's achievable peak).
#include <cstdio>

#include <torch/version.h>

#include "cli/commands.h"
#include "cli/thread_flag.h"
#include "common/error.h"
#include "model/gemv.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"

namespace handoff::cli {

void register_info(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "info", "Print the compute setup: BLAS library, threads, a 1-second GEMM GFLOP/s probe");
  auto threads = std::make_shared<int>(0);
  auto size = std::make_shared<int>(1024);
  auto model = std::make_shared<std::string>();
  auto width = std::make_shared<int64_t>(0);
  cmd->add_option("--threads", *threads, "Threads for ATen and OpenBLAS (0 = the rule, for --model's width)");
  cmd->add_option(
      "--model", *model,
      "Checkpoint whose width the thread rule is applied to (what sft/train/eval/serve would choose)");
  cmd->add_option("--width", *width, "A model width (hidden_size) to apply the thread rule to, instead")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--gemm-size", *size, "Square GEMM size for the probe")->check(CLI::Range(64, 8192));
  cmd->callback([threads, size, model, width] {
    if (!model->empty() && checkpoint_width(*model) <= 0)
      throw Error("--model " + *model + ": no readable config.json with a hidden_size");
    const ThreadChoice choice = setup_threads(*threads, model->empty() ? *width : checkpoint_width(*model));
    std::printf("handoff 0.1.0, libtorch %s\n", TORCH_VERSION);
    std::printf("BLAS: %s\n", blas_library().c_str());
    std::printf("threads (eval, ask, serve, route): %d (%s)\n", choice.threads, choice.why.c_str());
    const TrainingThreads training = choose_training_threads(0, 0);
    std::printf("threads (sft, train): %d data x %d ATen (%s)\n", training.data_threads, training.op_threads,
                training.why.c_str());
    std::printf("thread pools: %s\n", blas_threads_summary().c_str());
    // Measured, not assumed: the threads that really ran a batch-1 decode GEMV's row blocks.
    std::printf("decode GEMV: %d thread(s) ran its row blocks\n", gemv_worker_threads());
    std::printf(
        "reproducibility: same kernels (below) and same thread count give the same bytes; another thread "
        "count sums in another order (results then differ like another seed)\n");
    std::printf("kernels: %s (HANDOFF_KERNELS=native|portable; see runtime/kernels.h)\n",
                kernels_summary().c_str());
    const double g = gemm_gflops(*size, 1.0);
    std::printf("GEMM %dx%d fp32: %.1f GFLOP/s\n", *size, *size, g);
  });
}

}  // namespace handoff::cli
