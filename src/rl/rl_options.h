#pragma once
// Options of RL post-training: the method (GAPG or a baseline), rollout, reward weights, budget, optimiser.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rl/pure/reward.h"

namespace handoff {

// Options of one RL run. Every field is declared once, in rl_option_table() (rl_options.cpp): its JSON key
// (presets, trainer_state.json, `handoff train --options`), its `handoff train` flag, its help and its check.
// The methods themselves (reward, advantage, filter) are in rl/method_registry.h.
struct RlOptions {
  std::string algo = "gapg";
  std::string task = "chain";
  std::vector<int> difficulties;  // empty → the task's range
  int64_t prompt_pool = 2000;     // the fixed training set of prompts (the paper trains on a fixed dataset)
  int64_t steps = 100;
  int64_t prompts_per_step = 32;
  int64_t group = 8;  // G
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t max_new_tokens = 64;
  double lr = 5e-5;
  double lr_tail = 0.0;  // > 0: the last lr_tail of the steps decay the rate linearly towards 0
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  // > 0: the policy update runs on length-sorted micro-batches of at most this many padded tokens
  // (rl/policy_loss.h length_microbatches); 0: one batch padded to its longest row. 2048: 2.3x faster
  // updates than one batch on a quick-preset GAPG step at 1 thread (bench/bench_policy_update.cpp).
  int64_t update_tokens = 2048;
  // > 1: the update's rows (and the rollout's prompts) dealt to this many threads, each on one ATen thread
  // (runtime/data_threads.h); set by the commands' thread rule (cli/thread_flag.h), not a recorded option.
  int data_threads = 1;
  // > 0: the first solve_first of the steps sample with the hand-off token banned, so the device practises
  // solving before it learns when to hand off (docs/results/2026-12-05-chain-solo-solving/: hand-offs during
  // RL take practice from the items on the device's learning knee); the call-rate controller starts after.
  double solve_first = 0.0;
  // Which tokens of a hand-off sample carry its advantage: "all" (the paper, §3.3: every token of y_θ) or
  // "decision" (the hand-off token alone). The steps a hand-off sample wrote before calling were not judged:
  // under "all" a D² group's advantage reinforces them (they failed in every sample) and a D¹ group's
  // pushes them down (they may be right), which shapes the solving on the items the device is learning.
  std::string handoff_credit = "all";
  double budget = 3.0 / 7.0;  // ρ: D² ≤ ρ·D¹ (the paper's ratio form; --max-call-rate r sets ρ = r/(1−r))
  bool carry_remainder = true;
  // The deployed call rate held by a dual variable (rl/pure/call_rate_dual.h): "none" (the paper: the
  // filter's cap alone) or "dual" (λ on the hand-off, raised while the greedy rate measured on a probe set of
  // train-split prompts is above ρ/(1+ρ), lowered below it).
  std::string call_rate_control = "none";
  double dual_step = 0.3;       // η of λ ← clamp(λ + η (ĉ − r*), 0, λ_max)
  double dual_kp = 0.5;         // K_p of the price clamp(λ + K_p (ĉ − r*), 0, λ_max)
  bool dual_two_sided = false;  // also a bonus (λ < 0) while the rate is below the target: track, not cap
  // Two-sided only: while the greedy rate is below the target, the bonus follows the larger of the greedy
  // and the rollouts' sampled rate, and is never turned into a price by it (anti-windup; call_rate_dual.h).
  bool dual_bonus_sampled = false;
  double dual_lambda_max = 2.0;  // λ's ceiling (α_a: beyond it any hand-off is worth less than anything)
  int64_t dual_every = 5;        // steps between measurements (and dual steps)
  int64_t dual_probe = 256;      // greedy probe prompts per measurement (fresh ones each time)
  // > 0: the run ends on the iterate of its last dual_select_last fraction of steps whose measured rate was
  // closest to the target (rl/iterate_selection.h), not on the last one.
  double dual_select_last = 0.0;
  // > 0: measurements inside that selection window probe this many prompts instead of dual_probe — the
  // selection keeps the closest of ~8 noisy measurements, so each must be finer than the ±0.03 it is
  // judged by (256 items: sd ≈ 0.029 at r = 0.3; 1,024: ≈ 0.014).
  int64_t dual_select_probe = 0;
  RewardWeights weights;
  bool allow_any_order = false;
  double format_bonus = 0.2;  // task-tuning/grpo: bonus for a well-formatted answer, as α_f
  int64_t ppo_epochs = 1;     // > 1: reuse each batch with PPO-style clipped ratios
  double clip_eps = 0.2;
  double kl_coef = 0.0;  // > 0: k3 KL penalty to the initial model
  uint64_t seed = 1;
  int64_t log_every = 1;
  int64_t checkpoint_every = 25;
  int64_t stop_at_step = -1;  // stop with a checkpoint here, as if interrupted (tests)
  std::string device = "cpu";
  bool quiet = false;
  // The cloud.
  std::string cloud_url;
  std::string cloud_model = "cloud";
  std::string api_key_env;
  std::string cloud_cache;  // empty → OUT/cloud_cache.jsonl
  int cloud_concurrency = 4;
  int64_t cloud_max_tokens = 128;
  // USD per million prompt / completion tokens the cloud bills: the run's cost account (0: not priced).
  double cloud_price_in = 0, cloud_price_out = 0;
  // What the device and the cloud are told (protocol.h): a built-in name or a protocol JSON file; empty →
  // the one the initial checkpoint records, else the embedded default.
  std::string protocol;
  double cloud_timeout_s = 60.0;
  int cloud_retries = 3;

  nlohmann::json to_json() const;
  static RlOptions from_json(const nlohmann::json& j, const std::string& source);  // unknown keys → Error
  void validate() const;                                                           // throws Error
};

template <class T>
class OptionTable;
// The one table of RlOptions' fields (JSON, CLI flags, checks).
const OptionTable<RlOptions>& rl_option_table();

}  // namespace handoff
