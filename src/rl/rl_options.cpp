#include "rl/rl_options.h"

#include <cmath>

#include "common/error.h"

namespace handoff {

std::vector<std::string> rl_algo_names() {
  return {"gapg", "collab-grpo", "collab-drgrpo", "task-tuning", "grpo"};
}

nlohmann::json RlOptions::to_json() const {
  return {{"algo", algo},
          {"task", task},
          {"difficulties", difficulties},
          {"prompt_pool", prompt_pool},
          {"steps", steps},
          {"prompts_per_step", prompts_per_step},
          {"group", group},
          {"temperature", temperature},
          {"top_p", top_p},
          {"max_new_tokens", max_new_tokens},
          {"lr", lr},
          {"weight_decay", weight_decay},
          {"grad_clip", grad_clip},
          {"budget", budget},
          {"carry_remainder", carry_remainder},
          {"alpha_a", weights.alpha_a},
          {"alpha_c", weights.alpha_c},
          {"alpha_f", weights.alpha_f},
          {"allow_any_order", allow_any_order},
          {"format_bonus", format_bonus},
          {"ppo_epochs", ppo_epochs},
          {"clip_eps", clip_eps},
          {"kl_coef", kl_coef},
          {"seed", seed},
          {"log_every", log_every},
          {"checkpoint_every", checkpoint_every},
          {"cloud_model", cloud_model},
          {"cloud_concurrency", cloud_concurrency},
          {"cloud_timeout_s", cloud_timeout_s},
          {"cloud_retries", cloud_retries}};
}

RlOptions RlOptions::from_json(const nlohmann::json& j, const std::string& source) {
  RlOptions o;
  const auto known = o.to_json();
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(source + ": unknown RL option '" + it.key() + "'");
  try {
    auto merged = known;
    merged.update(j);
    o.algo = merged["algo"];
    o.task = merged["task"];
    o.difficulties = merged["difficulties"].get<std::vector<int>>();
    o.prompt_pool = merged["prompt_pool"];
    o.steps = merged["steps"];
    o.prompts_per_step = merged["prompts_per_step"];
    o.group = merged["group"];
    o.temperature = merged["temperature"];
    o.top_p = merged["top_p"];
    o.max_new_tokens = merged["max_new_tokens"];
    o.lr = merged["lr"];
    o.weight_decay = merged["weight_decay"];
    o.grad_clip = merged["grad_clip"];
    o.budget = merged["budget"];
    o.carry_remainder = merged["carry_remainder"];
    o.weights.alpha_a = merged["alpha_a"];
    o.weights.alpha_c = merged["alpha_c"];
    o.weights.alpha_f = merged["alpha_f"];
    o.allow_any_order = merged["allow_any_order"];
    o.format_bonus = merged["format_bonus"];
    o.ppo_epochs = merged["ppo_epochs"];
    o.clip_eps = merged["clip_eps"];
    o.kl_coef = merged["kl_coef"];
    o.seed = merged["seed"];
    o.log_every = merged["log_every"];
    o.checkpoint_every = merged["checkpoint_every"];
    o.cloud_model = merged["cloud_model"];
    o.cloud_concurrency = merged["cloud_concurrency"];
    o.cloud_timeout_s = merged["cloud_timeout_s"];
    o.cloud_retries = merged["cloud_retries"];
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": RL option has the wrong type: " + e.what());
  }
  return o;
}

void RlOptions::validate() const {
  bool known_algo = false;
  for (const auto& a : rl_algo_names()) known_algo |= a == algo;
  if (!known_algo)
    throw Error("unknown RL algorithm '" + algo + "'",
                "known: gapg, collab-grpo, collab-drgrpo, task-tuning, grpo");
  if (group < 2)
    throw Error("the group size G must be at least 2 (got " + std::to_string(group) + ")",
                "the group-level estimator compares samples of one prompt");
  if (!(budget > 0) || !std::isfinite(budget))
    throw Error("the budget ρ must be positive and finite (got " + std::to_string(budget) + ")",
                "use --budget in (0, 1] or --max-call-rate r in (0, 1)");
  if (steps <= 0 || prompts_per_step <= 0 || prompt_pool <= 0)
    throw Error("steps, prompts_per_step and prompt_pool must be positive");
  if (!(lr > 0) || !std::isfinite(lr)) throw Error("the RL learning rate must be positive");
  if (temperature <= 0 || temperature > 2) throw Error("the rollout temperature must be in (0, 2]");
  if (top_p <= 0 || top_p > 1) throw Error("top_p must be in (0, 1]");
  if (ppo_epochs < 1) throw Error("ppo_epochs must be >= 1");
  if (kl_coef < 0) throw Error("kl_coef must be >= 0");
  if (max_new_tokens < 1) throw Error("max_new_tokens must be >= 1");
}

}  // namespace handoff
