// `handoff train`: RL post-training of the device model (GAPG or a baseline) against a cloud.
#include <cstdio>

#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/preset.h"
#include "cli/thread_flag.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/option_table.h"
#include "dist/world.h"
#include "rl/method_registry.h"
#include "rl/pure/budget.h"
#include "rl/rl_trainer.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {
struct TrainArgs {
  std::string device_dir, out, preset = "quick", options_file;
  double max_call_rate = -1;
  int threads = 0, data_threads = 0;
  std::string precision = "fp32";
  bool resume = false, strict_budget = false;
  std::function<void(RlOptions&)> apply_flags;  // the option table's flags that were given
};

// The run's options: an --options file, else the preset's rl section (and task); then the flags given.
RlOptions train_options(const TrainArgs& a) {
  RlOptions o;
  if (!a.options_file.empty()) {
    if (!file_exists(a.options_file)) throw Error("--options: no such file " + a.options_file);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(a.options_file));
    } catch (const nlohmann::json::exception& e) {
      throw Error("--options " + a.options_file + " is not valid JSON: " + e.what());
    }
    o = RlOptions::from_json(j, a.options_file);
  } else {
    auto preset = load_preset(a.preset);
    if (preset.contains("rl")) o = RlOptions::from_json(preset["rl"], "preset " + a.preset + "/rl");
    if (preset.contains("task")) o.task = preset["task"].get<std::string>();
  }
  a.apply_flags(o);
  if (a.max_call_rate >= 0) o.budget = budget_from_call_rate(a.max_call_rate);  // --budget excludes it
  if (a.strict_budget) o.carry_remainder = false;
  return o;
}
}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "RL post-training of the device model: GAPG (ours) or a baseline");
  cmd->add_option("--device", a->device_dir, "Device model checkpoint to start from")->required();
  cmd->add_option("--out", a->out, "Run directory (OUT/model, OUT/metrics.jsonl, OUT/cloud_cache.jsonl)")
      ->required();
  cmd->add_option("--options", a->options_file,
                  "RL options as JSON (the 'options' of a run's trainer_state.json; `handoff demo` writes "
                  "one per method); replaces --preset, other flags still override");
  cmd->add_option("--preset", a->preset, "Preset whose 'rl' section gives the defaults")
      ->capture_default_str();
  a->apply_flags = rl_option_table().bind_cli(*cmd);
  cmd->get_option("--algo")->check(CLI::IsMember(rl_method_names()));
  auto* rate =
      cmd->add_option("--max-call-rate", a->max_call_rate, "Sets ρ = r/(1−r): calls ≤ r of all queries");
  cmd->get_option("--budget")->excludes(rate);
  cmd->add_flag("--strict-budget", a->strict_budget, "Cap D² at ⌊ρ|D¹|⌋ per batch (no carried remainder)");
  add_training_thread_flags(cmd, a->threads, a->data_threads);
  add_precision_flag(cmd, a->precision);
  cmd->add_flag("--resume", a->resume, "Continue from OUT/model");
  cmd->callback([a] {
    // Under torchrun (RANK, WORLD_SIZE, … set) this process is one rank of a data-parallel run.
    World& world = World::instance();
    world.join(launch_env());
    const TrainingThreads threads = setup_training_threads(a->threads, a->data_threads);
    apply_precision(a->precision);
    RlOptions o = train_options(*a);
    if (!world.main()) o.quiet = true;  // rank 0 reports for the job
    if (!o.quiet && world.distributed())
      std::printf("data-parallel: %d processes, this is rank 0\n", world.size());
    o.data_threads = threads.data_threads;
    if (!o.quiet)
      std::printf("threads: %d data x %d ATen (%s)\n", threads.data_threads, threads.op_threads,
                  threads.why.c_str());
    auto r = run_rl(o, a->device_dir, a->out, a->resume);
    if (!world.main()) return;
    std::printf(
        "train %s done: %lld steps in %.1f s, reward %.3f, local accuracy %.3f, call rate %.3f, %lld cloud "
        "calls (%lld prompt + %lld completion tokens, $%.4f) → %s/model\n",
        o.algo.c_str(), static_cast<long long>(r.steps_done), r.seconds, r.last_reward, r.last_local_accuracy,
        r.last_call_rate, static_cast<long long>(r.cloud_calls),
        static_cast<long long>(r.cloud_prompt_tokens), static_cast<long long>(r.cloud_completion_tokens),
        r.cloud_cost_usd, a->out.c_str());
  });
}

}  // namespace handoff::cli
