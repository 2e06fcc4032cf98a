#include "rl/rl_options.h"

#include <cmath>

#include "common/error.h"
#include "common/option_table.h"
#include "rl/method_registry.h"

namespace handoff {

namespace {

template <class V>
std::function<std::string(const V&)> positive_finite() {
  return [](const V& v) {
    return v > 0 && std::isfinite(static_cast<double>(v)) ? std::string() : "must be positive and finite";
  };
}

// RL options: the method, the task and the rollout.
void add_rollout_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<std::string>(
       "algo", "--algo", rl_methods_help(), [](O & o) -> auto& { return o.algo; },
       [](const std::string& a) {
         find_rl_method(a);  // throws, listing the methods
         return std::string();
       })
      .add<std::string>(
          "handoff_credit", "--handoff-credit",
          "Tokens of a hand-off sample that carry its advantage: all (the paper) | decision (the hand-off "
          "token alone; the steps written before it are not credited with the cloud's reward)",
          [](O & o) -> auto& { return o.handoff_credit; },
          [](const std::string& v) {
            return v == "all" || v == "decision" ? std::string()
                                                 : "must be all or decision (got '" + v + "')";
          })
      .add<std::string>(
          "task", "--task", "Task (default: the preset's)", [](O & o) -> auto& { return o.task; })
      .add<std::vector<int>>(
          "difficulties", "--difficulties", "Training difficulties (comma-separated)",
          [](O & o) -> auto& { return o.difficulties; })
      .add<int64_t>(
          "prompt_pool", "--prompt-pool", "Size of the fixed training prompt set",
          [](O & o) -> auto& { return o.prompt_pool; }, c::positive<int64_t>())
      .add<int64_t>(
          "steps", "--steps", "RL steps", [](O & o) -> auto& { return o.steps; }, c::positive<int64_t>())
      .add<int64_t>(
          "prompts_per_step", "--prompts-per-step", "Prompts per step",
          [](O & o) -> auto& { return o.prompts_per_step; }, c::positive<int64_t>())
      .add<int64_t>(
          "group", "--group", "G, samples per prompt", [](O & o) -> auto& { return o.group; },
          [](const int64_t& g) {
            return g >= 2 ? std::string()
                          : "the group size G must be at least 2 (got " + std::to_string(g) +
                                "): the group-level estimator compares samples of one prompt";
          })
      .add<double>(
          "temperature", "--temperature", "Rollout temperature", [](O & o) -> auto& { return o.temperature; },
          c::in_range(0.0, 2.0, true))
      .add<double>(
          "top_p", "", "", [](O & o) -> auto& { return o.top_p; }, c::in_range(0.0, 1.0, true))
      .add<int64_t>(
          "max_new_tokens", "--max-new-tokens", "Longest device response in a rollout",
          [](O & o) -> auto& { return o.max_new_tokens; }, c::at_least<int64_t>(1));
}

// RL options: the optimiser.
void add_optimiser_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<double>(
       "lr", "--lr", "Learning rate (AdamW)", [](O & o) -> auto& { return o.lr; }, positive_finite<double>())
      .add<double>(
          "lr_tail", "--lr-tail",
          "Fraction of the steps, at the end, over which the learning rate decays linearly towards 0 "
          "(0 = constant)",
          [](O & o) -> auto& { return o.lr_tail; }, c::in_range(0.0, 1.0))
      .add<double>(
          "weight_decay", "", "", [](O & o) -> auto& { return o.weight_decay; })
      .add<double>(
          "grad_clip", "", "", [](O & o) -> auto& { return o.grad_clip; })
      .add<int64_t>(
          "update_tokens", "--update-tokens",
          "Run the policy update on length-sorted micro-batches of at most this many padded tokens "
          "(0 = one batch padded to its longest row)",
          [](O & o) -> auto& { return o.update_tokens; }, c::at_least<int64_t>(0));
}

// RL options: the budget and the call-rate controller.
void add_budget_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<double>(
       "budget", "--budget", "ρ: cloud calls ≤ ρ · local answers (paper's ratio form)",
       [](O & o) -> auto& { return o.budget; },
       [](const double& b) {
         return b > 0 && std::isfinite(b)
                    ? std::string()
                    : "the budget ρ must be positive and finite (got " + std::to_string(b) +
                          "); use --budget ρ > 0 or --max-call-rate r in (0, 1)";
       })
      .add<bool>(
          "carry_remainder", "", "", [](O & o) -> auto& { return o.carry_remainder; })
      .add<double>(
          "solve_first", "--solve-first",
          "Fraction of the steps, at the start, whose rollouts have the hand-off token banned: the device "
          "practises solving before it learns when to hand off; the call-rate controller starts after them "
          "(0 = off)",
          [](O & o) -> auto& { return o.solve_first; },
          [](const double& v) {
            return v >= 0 && v < 1 ? std::string()
                                   : "must be in [0, 1): the steps after it learn when to hand off (got " +
                                         std::to_string(v) + ")";
          })
      .add<std::string>(
          "call_rate_control", "--call-rate-control",
          "none (the paper: the filter's cap alone) | dual (a price on the hand-off holds the greedy "
          "call rate at ρ/(1+ρ))",
          [](O & o) -> auto& { return o.call_rate_control; },
          [](const std::string& v) {
            return v == "none" || v == "dual" ? std::string() : "must be none or dual (got '" + v + "')";
          })
      .add<double>(
          "dual_step", "--dual-step", "η, the call-rate controller's integral step per measurement",
          [](O & o) -> auto& { return o.dual_step; },
          [](const double& v) {
            return v > 0 && std::isfinite(v)
                       ? std::string()
                       : "the controller's step must be positive (with step <= 0 λ never moves)";
          })
      .add<double>(
          "dual_kp", "--dual-kp",
          "K_p, the proportional gain of the hand-off's price (0 = plain dual ascent)",
          [](O & o) -> auto& { return o.dual_kp; }, c::at_least(0.0))
      .add<bool>(
          "dual_two_sided", "--dual-two-sided",
          "Let the price go negative (a bonus for calling) while the rate is below the target, so the "
          "rate tracks the target from below too",
          [](O & o) -> auto& { return o.dual_two_sided; })
      .add<bool>(
          "dual_bonus_sampled", "--dual-bonus-sampled",
          "Two-sided: while the greedy rate is below the target, the bonus grows only while the rollouts' "
          "sampled rate is below it too and is withdrawn while it is above (the sampled rate leads the "
          "greedy one; stops the bonus winding up)",
          [](O & o) -> auto& { return o.dual_bonus_sampled; })
      .add<double>(
          "dual_lambda_max", "", "", [](O & o) -> auto& { return o.dual_lambda_max; },
          positive_finite<double>())
      .add<int64_t>(
          "dual_every", "--dual-every", "Steps between call-rate measurements",
          [](O & o) -> auto& { return o.dual_every; }, c::positive<int64_t>())
      .add<int64_t>(
          "dual_probe", "--dual-probe", "Greedy probe prompts (train split) per measurement",
          [](O & o) -> auto& { return o.dual_probe; }, c::positive<int64_t>())
      .add<double>(
          "dual_select_last", "--dual-select-last",
          "End on the iterate, among those the controller measured in this last fraction of the steps, "
          "whose greedy call rate was closest to the target (0 = the last iterate)",
          [](O & o) -> auto& { return o.dual_select_last; }, c::in_range(0.0, 1.0))
      .add<int64_t>(
          "dual_select_probe", "--dual-select-probe",
          "Greedy probe prompts per measurement inside the --dual-select-last window (0 = --dual-probe)",
          [](O & o) -> auto& { return o.dual_select_probe; }, c::at_least<int64_t>(0));
}

// RL options: the reward (§3.2) and the update.
void add_reward_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<double>(
       "alpha_a", "--alpha-a", "Reward α_a (local correct)", [](O & o) -> auto& { return o.weights.alpha_a; })
      .add<double>(
          "alpha_c", "--alpha-c", "Reward α_c (cloud called and correct)",
          [](O & o) -> auto& { return o.weights.alpha_c; })
      .add<double>(
          "alpha_f", "--alpha-f", "Reward α_f (well formatted)",
          [](O & o) -> auto& { return o.weights.alpha_f; })
      .add<bool>(
          "allow_any_order", "--allow-any-order", "Accept α's that break α_a > α_c > α_f (ablations)",
          [](O & o) -> auto& { return o.allow_any_order; })
      .add<double>(
          "format_bonus", "", "", [](O & o) -> auto& { return o.format_bonus; })
      .add<int64_t>(
          "ppo_epochs", "--ppo-epochs", "Updates per batch with clipped ratios (1 = on-policy)",
          [](O & o) -> auto& { return o.ppo_epochs; }, c::at_least<int64_t>(1))
      .add<double>(
          "clip_eps", "", "", [](O & o) -> auto& { return o.clip_eps; })
      .add<double>(
          "kl_coef", "--kl", "KL penalty coefficient to the starting model (0 = off)",
          [](O & o) -> auto& { return o.kl_coef; }, c::at_least(0.0));
}

// RL options: seeding, logging and checkpoints.
void add_run_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<uint64_t>(
       "seed", "--seed", "Seed", [](O & o) -> auto& { return o.seed; })
      .add<int64_t>(
          "log_every", "--log-every", "Steps between metrics lines",
          [](O & o) -> auto& { return o.log_every; }, c::positive<int64_t>())
      .add<int64_t>(
          "checkpoint_every", "--checkpoint-every", "Steps between checkpoints",
          [](O & o) -> auto& { return o.checkpoint_every; });
}

// RL options: the cloud and where the run computes.
void add_cloud_fields(OptionTable<RlOptions>& t) {
  namespace c = option_checks;
  using O = RlOptions;
  t.add<std::string>(
       "cloud_model", "--cloud-model", "Model name sent to the cloud",
       [](O & o) -> auto& { return o.cloud_model; })
      .add<int>(
          "cloud_concurrency", "--cloud-concurrency",
          "Cloud requests in flight at a time (the cloud's rate limit)",
          [](O & o) -> auto& { return o.cloud_concurrency; }, c::in_range(1, 256))
      .add<int64_t>(
          "cloud_max_tokens", "--cloud-max-tokens",
          "max_tokens of a request to the cloud (a reasoning model needs thousands; the cache keys on it)",
          [](O & o) -> auto& { return o.cloud_max_tokens; }, c::positive<int64_t>())
      .add<double>(
          "cloud_price_in", "--cloud-price-in",
          "USD per million prompt tokens the cloud bills (the run's cost account; 0: not priced)",
          [](O & o) -> auto& { return o.cloud_price_in; }, c::in_range(0.0, 1e6))
      .add<double>(
          "cloud_price_out", "--cloud-price-out", "USD per million completion tokens the cloud bills",
          [](O & o) -> auto& { return o.cloud_price_out; }, c::in_range(0.0, 1e6))
      .add<std::string>(
          "protocol", "--protocol",
          "What the device and the cloud are told: handoff (default), paper, or a protocol JSON file "
          "(default: what the initial checkpoint records)",
          [](O & o) -> auto& { return o.protocol; })
      .add<double>(
          "cloud_timeout_s", "--cloud-timeout",
          "Seconds to wait for one cloud reply (a reasoning model writing thousands of tokens needs minutes)",
          [](O & o) -> auto& { return o.cloud_timeout_s; }, positive_finite<double>())
      .add<int>(
          "cloud_retries", "--cloud-retries", "Retries of a cloud request on connection errors, 429 and 5xx",
          [](O & o) -> auto& { return o.cloud_retries; }, c::in_range(0, 100))
      // Where the run talks to and computes: not part of a run's recorded options.
      .add<std::string>(
          "", "--cloud", "OpenAI-compatible base URL of the cloud (e.g. http://127.0.0.1:8080/v1)",
          [](O & o) -> auto& { return o.cloud_url; })
      .add<std::string>(
          "", "--api-key-env", "Environment variable holding the cloud's API key",
          [](O & o) -> auto& { return o.api_key_env; })
      .add<std::string>(
          "", "--cloud-cache", "Cloud answer cache file (default OUT/cloud_cache.jsonl)",
          [](O & o) -> auto& { return o.cloud_cache; })
      .add<std::string>(
          "", "--compute", "cpu | cuda", [](O & o) -> auto& { return o.device; })
      .add<bool>(
          "", "--quiet", "No progress lines", [](O & o) -> auto& { return o.quiet; });
}

OptionTable<RlOptions> make_table() {
  OptionTable<RlOptions> t("RL option");
  add_rollout_fields(t);
  add_optimiser_fields(t);
  add_budget_fields(t);
  add_reward_fields(t);
  add_run_fields(t);
  add_cloud_fields(t);
  return t;
}

}  // namespace

const OptionTable<RlOptions>& rl_option_table() {
  static const OptionTable<RlOptions> table = make_table();
  return table;
}

nlohmann::json RlOptions::to_json() const {
  return rl_option_table().to_json(*this);
}

RlOptions RlOptions::from_json(const nlohmann::json& j, const std::string& source) {
  return rl_option_table().from_json(j, source);
}

void RlOptions::validate() const {
  rl_option_table().validate(*this);
  // The reward tables check their own weights (α_a > α_c > α_f unless allow_any_order; bonus in [0, 1)).
  HierarchicalReward(weights, allow_any_order);
  TaskTuningReward{format_bonus};
  if (call_rate_control == "dual" && !find_rl_method(algo).needs_cloud())
    throw Error("--call-rate-control dual needs a method that can call the cloud (not --algo " + algo + ")");
  if (dual_select_last > 0 && call_rate_control != "dual")
    throw Error("--dual-select-last selects among the call-rate controller's measurements",
                "add --call-rate-control dual, or drop --dual-select-last");
  if (dual_bonus_sampled && (call_rate_control != "dual" || !dual_two_sided))
    throw Error("--dual-bonus-sampled shapes the two-sided call-rate controller's bonus",
                "add --call-rate-control dual --dual-two-sided, or drop --dual-bonus-sampled");
  if (dual_select_probe > 0 && dual_select_last <= 0)
    throw Error("--dual-select-probe sizes the measurements of the --dual-select-last window",
                "add --dual-select-last, or drop --dual-select-probe");
}

}  // namespace handoff
