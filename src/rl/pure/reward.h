#pragma once
// Rewards for one device response. Paper §3.2: the collaboration-aware hierarchical reward, whose whole table
// is HierarchicalReward::operator(); and the accuracy-only reward of the task-tuning / GRPO baselines
// (paper.md §5).
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/response.h"

namespace handoff {

// The α's of paper §3.2 (the paper's Countdown values as defaults).
struct RewardWeights {
  double alpha_a = 2.0;  // answered locally and correct
  double alpha_c = 0.5;  // called the cloud and the cloud was correct
  double alpha_f = 0.2;  // well formatted local answer (added to α_a when also correct)
};

// Paper §3.2. α_a > α_c keeps the device solving by itself when it can (otherwise the policy learns to always
// call the cloud); α_c > α_f makes a useful call worth more than a well-formatted wrong guess.
class HierarchicalReward {
 public:
  // Throws Error on non-finite weights; on negative weights or weights breaking α_a > α_c > α_f too, unless
  // allow_any_order (for ablations of the hierarchy).
  explicit HierarchicalReward(RewardWeights weights = {}, bool allow_any_order = false);

  // local_correct: the verifier's verdict on parsed.answer, required for a kLocalAnswer.
  // cloud_correct: the verdict on the cloud's answer to this prompt, required for a kHandoff.
  // The one not needed by parsed.kind may be nullopt; a needed one missing throws Error (a wiring bug).
  double operator()(const ParsedResponse& parsed, std::optional<bool> local_correct,
                    std::optional<bool> cloud_correct) const;

  const RewardWeights& weights() const { return weights_; }

 private:
  RewardWeights weights_;
};

// Accuracy only, no cloud (the task-tuning and GRPO baselines): 1 for a correct local answer, 0 for a wrong
// one, a hand-off counts as wrong (0); an optional format bonus is added to well-formatted local answers, as
// α_f is.
class TaskTuningReward {
 public:
  // format_bonus in [0, 1), else Error.
  explicit TaskTuningReward(double format_bonus = 0.0);
  // Same signature as HierarchicalReward so either plugs into the trainer; cloud_correct is ignored.
  double operator()(const ParsedResponse& parsed, std::optional<bool> local_correct,
                    std::optional<bool> cloud_correct = std::nullopt) const;
  double format_bonus() const { return format_bonus_; }

 private:
  double format_bonus_;
};

enum class RewardKind { kHierarchical, kTaskTuning };

// "hierarchical" | "task-tuning".
std::string reward_kind_name(RewardKind kind);

using RewardFn = std::function<double(const ParsedResponse&, std::optional<bool>, std::optional<bool>)>;
// kHierarchical: HierarchicalReward(weights, allow_any_order). kTaskTuning: TaskTuningReward(format_bonus)
// (0 for accuracy only); the weights are unused there.
RewardFn make_reward(RewardKind kind, const RewardWeights& weights = {}, bool allow_any_order = false,
                     double format_bonus = 0.0);

}  // namespace handoff
