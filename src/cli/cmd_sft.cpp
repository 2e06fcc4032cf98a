// `handoff sft`: supervised warm start of a device or cloud base model on a task's worked solutions.
#include <cstdio>

#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/preset.h"
#include "cli/thread_flag.h"
#include "common/error.h"
#include "common/option_table.h"
#include "dist/world.h"
#include "rl/sft.h"
#include "runtime/kernels.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {
struct SftArgs {
  std::string task = "chain", role = "device", preset = "quick", out;
  int threads = 0, data_threads = 0;
  std::string precision = "fp32";
  bool resume = false;
  std::function<void(SftOptions&)> apply_flags;  // the option table's flags that were given
};
}  // namespace

void register_sft(CLI::App& app) {
  auto a = std::make_shared<SftArgs>();
  auto* cmd =
      app.add_subcommand("sft", "Supervised warm start of a device or cloud base model (worked solutions)");
  cmd->add_option("--task", a->task, "Task: chain | countdown | wordmath | carry | hops")
      ->capture_default_str();
  cmd->add_option("--role", a->role, "Which base model: device | cloud")
      ->check(CLI::IsMember({"device", "cloud"}))
      ->capture_default_str();
  cmd->add_option("--preset", a->preset, "Preset name in configs/ or a JSON file")->capture_default_str();
  cmd->add_option("--out", a->out, "Run directory (model in OUT/model, metrics in OUT/metrics.jsonl)")
      ->required();
  a->apply_flags = sft_option_table().bind_cli(*cmd);
  add_training_thread_flags(cmd, a->threads, a->data_threads);
  add_precision_flag(cmd, a->precision);
  cmd->add_flag("--resume", a->resume, "Continue from OUT/model's trainer state");
  cmd->callback([a] {
    // Under torchrun (RANK, WORLD_SIZE, … set) this process is one rank of a data-parallel run.
    World& world = World::instance();
    world.join(launch_env());
    apply_precision(a->precision);
    auto preset = load_preset(a->preset);
    if (!preset.contains(a->role)) throw Error("preset '" + a->preset + "' has no '" + a->role + "' section");
    const auto& section = preset[a->role];
    if (!section.contains("model") || !section.contains("sft"))
      throw Error("preset '" + a->preset + "' section '" + a->role + "' needs 'model' and 'sft'");
    auto model_cfg =
        ModelConfig::from_json(section["model"], "preset " + a->preset + "/" + a->role + "/model");
    auto opts = SftOptions::from_json(section["sft"], "preset " + a->preset + "/" + a->role + "/sft");
    opts.task = a->task;
    if (section.contains("difficulties_by_task") && section["difficulties_by_task"].contains(a->task))
      opts.difficulties = section["difficulties_by_task"][a->task].get<std::vector<int>>();
    opts.device = "cpu";  // the compute device is the command's choice, never the preset's
    opts.role = a->role;
    a->apply_flags(opts);
    const TrainingThreads threads = setup_training_threads(a->threads, a->data_threads);
    opts.data_threads = threads.data_threads;
    if (!world.main()) opts.quiet = true;  // rank 0 reports for the job
    if (!opts.quiet && world.distributed())
      std::printf("data-parallel: %d processes, this is rank 0\n", world.size());
    if (!opts.quiet)
      std::printf("kernels: %s\nthreads: %d data x %d ATen (%s)\n", kernels_summary().c_str(),
                  threads.data_threads, threads.op_threads, threads.why.c_str());
    auto r = run_sft(model_cfg, opts, a->out, a->resume);
    if (!world.main()) return;
    std::printf("sft done: %lld steps, final loss %.4f, %.1f s, %.0f tokens/s → %s/model\n",
                static_cast<long long>(r.steps_done), r.final_loss, r.seconds, r.tokens_per_s,
                a->out.c_str());
  });
}

}  // namespace handoff::cli
