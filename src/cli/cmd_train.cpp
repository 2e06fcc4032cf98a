// `handoff train`: RL post-training of the device model (GAPG or a baseline) against a cloud.
#include <cstdio>

#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/preset.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "rl/pure/budget.h"
#include "rl/rl_trainer.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {
struct TrainArgs {
  std::string device_dir, out, preset = "quick", cloud_url, cloud_model, api_key_env, cloud_cache, compute;
  std::string algo, task, options_file;
  std::vector<int> difficulties;
  double budget = -1, max_call_rate = -1, lr = -1, temperature = -1, alpha_a = -1, alpha_c = -1, alpha_f = -1,
         kl = -1;
  int64_t steps = -1, group = -1, prompts = -1, pool = -1, seed = -1, ppo_epochs = -1, checkpoint_every = -1;
  int threads = 0;
  std::string precision = "fp32";
  bool resume = false, allow_any_order = false, quiet = false, strict_budget = false;
};
}  // namespace

void register_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "RL post-training of the device model: GAPG (ours) or a baseline");
  cmd->add_option("--device", a->device_dir, "Device model checkpoint to start from")->required();
  cmd->add_option("--out", a->out, "Run directory (OUT/model, OUT/metrics.jsonl, OUT/cloud_cache.jsonl)")
      ->required();
  cmd->add_option("--algo", a->algo, "gapg (default) | collab-grpo | collab-drgrpo | task-tuning | grpo")
      ->check(CLI::IsMember(rl_algo_names()));
  cmd->add_option("--cloud", a->cloud_url,
                  "OpenAI-compatible base URL of the cloud (e.g. http://127.0.0.1:8080/v1)");
  cmd->add_option("--cloud-model", a->cloud_model, "Model name sent to the cloud");
  cmd->add_option("--api-key-env", a->api_key_env, "Environment variable holding the cloud's API key");
  cmd->add_option("--cloud-cache", a->cloud_cache, "Cloud answer cache file (default OUT/cloud_cache.jsonl)");
  cmd->add_option("--options", a->options_file,
                  "RL options as JSON (the 'options' of a run's trainer_state.json; `handoff demo` writes "
                  "one per method); replaces --preset, other flags still override");
  cmd->add_option("--preset", a->preset, "Preset whose 'rl' section gives the defaults")
      ->capture_default_str();
  cmd->add_option("--task", a->task, "Task (default: the preset's)");
  cmd->add_option("--difficulties", a->difficulties, "Training difficulties")->delimiter(',');
  cmd->add_option("--budget", a->budget, "ρ: cloud calls ≤ ρ · local answers (paper's ratio form)");
  cmd->add_option("--max-call-rate", a->max_call_rate, "Sets ρ = r/(1−r): calls ≤ r of all queries")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--strict-budget", a->strict_budget, "Cap D² at ⌊ρ|D¹|⌋ per batch (no carried remainder)");
  cmd->add_option("--steps", a->steps, "RL steps");
  cmd->add_option("--group", a->group, "G, samples per prompt");
  cmd->add_option("--prompts-per-step", a->prompts, "Prompts per step");
  cmd->add_option("--prompt-pool", a->pool, "Size of the fixed training prompt set");
  cmd->add_option("--lr", a->lr, "Learning rate (AdamW)");
  cmd->add_option("--temperature", a->temperature, "Rollout temperature");
  cmd->add_option("--alpha-a", a->alpha_a, "Reward α_a (local correct)");
  cmd->add_option("--alpha-c", a->alpha_c, "Reward α_c (cloud called and correct)");
  cmd->add_option("--alpha-f", a->alpha_f, "Reward α_f (well formatted)");
  cmd->add_flag("--allow-any-order", a->allow_any_order, "Accept α's that break α_a > α_c > α_f (ablations)");
  cmd->add_option("--kl", a->kl, "KL penalty coefficient to the starting model (0 = off)");
  cmd->add_option("--ppo-epochs", a->ppo_epochs, "Updates per batch with clipped ratios (1 = on-policy)");
  cmd->add_option("--checkpoint-every", a->checkpoint_every, "Steps between checkpoints");
  cmd->add_option("--seed", a->seed, "Seed");
  cmd->add_option("--compute", a->compute, "cpu | cuda")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Compute threads (0 = all cores)");
  add_precision_flag(cmd, a->precision);
  cmd->add_flag("--resume", a->resume, "Continue from OUT/model");
  cmd->add_flag("--quiet", a->quiet, "No progress lines");
  cmd->callback([a] {
    configure_threads(a->threads);
    apply_precision(a->precision);
    RlOptions o;
    if (!a->options_file.empty()) {
      if (!file_exists(a->options_file)) throw Error("--options: no such file " + a->options_file);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(read_file(a->options_file));
      } catch (const nlohmann::json::exception& e) {
        throw Error("--options " + a->options_file + " is not valid JSON: " + e.what());
      }
      o = RlOptions::from_json(j, a->options_file);
    } else {
      auto preset = load_preset(a->preset);
      if (preset.contains("rl")) o = RlOptions::from_json(preset["rl"], "preset " + a->preset + "/rl");
      if (preset.contains("task")) o.task = preset["task"].get<std::string>();
    }
    if (!a->algo.empty()) o.algo = a->algo;
    if (!a->task.empty()) o.task = a->task;
    if (!a->difficulties.empty()) o.difficulties = a->difficulties;
    if (a->budget >= 0 && a->max_call_rate >= 0)
      throw Error("give either --budget or --max-call-rate, not both");
    if (a->budget >= 0) o.budget = a->budget;
    if (a->max_call_rate >= 0) o.budget = budget_from_call_rate(a->max_call_rate);
    if (a->budget >= 0 && (a->budget <= 0 || a->budget > 1))
      throw Error("--budget must be in (0, 1] (got " + std::to_string(a->budget) + ")",
                  "for call rates above 1/2 use --max-call-rate");
    if (a->strict_budget) o.carry_remainder = false;
    if (a->steps >= 0) o.steps = a->steps;
    if (a->group >= 0) o.group = a->group;
    if (a->prompts >= 0) o.prompts_per_step = a->prompts;
    if (a->pool >= 0) o.prompt_pool = a->pool;
    if (a->lr >= 0) o.lr = a->lr;
    if (a->temperature >= 0) o.temperature = a->temperature;
    if (a->alpha_a >= 0) o.weights.alpha_a = a->alpha_a;
    if (a->alpha_c >= 0) o.weights.alpha_c = a->alpha_c;
    if (a->alpha_f >= 0) o.weights.alpha_f = a->alpha_f;
    if (a->allow_any_order) o.allow_any_order = true;
    if (a->kl >= 0) o.kl_coef = a->kl;
    if (a->ppo_epochs >= 0) o.ppo_epochs = a->ppo_epochs;
    if (a->checkpoint_every >= 0) o.checkpoint_every = a->checkpoint_every;
    if (a->seed >= 0) o.seed = static_cast<uint64_t>(a->seed);
    if (!a->cloud_url.empty()) o.cloud_url = a->cloud_url;
    if (!a->cloud_model.empty()) o.cloud_model = a->cloud_model;
    if (!a->api_key_env.empty()) o.api_key_env = a->api_key_env;
    if (!a->cloud_cache.empty()) o.cloud_cache = a->cloud_cache;
    if (!a->compute.empty()) o.device = a->compute;
    if (a->quiet) o.quiet = true;
    auto r = run_rl(o, a->device_dir, a->out, a->resume);
    std::printf(
        "train %s done: %lld steps in %.1f s, reward %.3f, local accuracy %.3f, call rate %.3f, %lld cloud "
        "calls → %s/model\n",
        o.algo.c_str(), static_cast<long long>(r.steps_done), r.seconds, r.last_reward, r.last_local_accuracy,
        r.last_call_rate, static_cast<long long>(r.cloud_calls), a->out.c_str());
  });
}

}  // namespace handoff::cli
