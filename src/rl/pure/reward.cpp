// Rewards: paper §3.2 (hierarchical reward table) and paper.md §5 (accuracy-only baseline).
#include "rl/pure/reward.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace handoff {
namespace {

std::string describe(const RewardWeights& w) {
  std::ostringstream s;
  s << "alpha_a=" << w.alpha_a << ", alpha_c=" << w.alpha_c << ", alpha_f=" << w.alpha_f;
  return s.str();
}

bool require(std::optional<bool> verdict, const char* which) {
  if (!verdict) {
    throw Error(std::string("reward: ") + which + " correctness is missing",
                "verify the answer before scoring the response (a wiring bug in the caller)");
  }
  return *verdict;
}

}  // namespace

HierarchicalReward::HierarchicalReward(RewardWeights weights, bool allow_any_order) : weights_(weights) {
  const RewardWeights& w = weights_;
  if (!std::isfinite(w.alpha_a) || !std::isfinite(w.alpha_c) || !std::isfinite(w.alpha_f)) {
    throw Error("reward weights " + describe(w) + " are not all finite numbers", "give finite alpha values");
  }
  if (allow_any_order) return;
  if (w.alpha_a < 0 || w.alpha_c < 0 || w.alpha_f < 0) {
    throw Error("reward weights " + describe(w) + " include a negative value",
                "use alpha_a > alpha_c > alpha_f >= 0, or allow any order for an ablation");
  }
  if (!(w.alpha_a > w.alpha_c && w.alpha_c > w.alpha_f)) {
    throw Error(
        "reward weights " + describe(w) + " break alpha_a > alpha_c > alpha_f",
        "the hierarchy keeps the device solving alone when it can (paper §3.2); fix the weights, or allow "
        "any order for an ablation");
  }
}

// Paper §3.2, the whole table.
double HierarchicalReward::operator()(const ParsedResponse& parsed, std::optional<bool> local_correct,
                                      std::optional<bool> cloud_correct) const {
  const RewardWeights& w = weights_;
  switch (parsed.kind) {
    case ResponseKind::kLocalAnswer: {
      const bool correct = require(local_correct, "local answer");
      if (correct) return parsed.well_formatted ? w.alpha_a + w.alpha_f : w.alpha_a;
      return parsed.well_formatted ? w.alpha_f : 0.0;
    }
    case ResponseKind::kHandoff:
      return require(cloud_correct, "cloud answer") ? w.alpha_c : 0.0;
    case ResponseKind::kFormatError:
      return 0.0;
  }
  return 0.0;
}

TaskTuningReward::TaskTuningReward(double format_bonus) : format_bonus_(format_bonus) {
  if (!std::isfinite(format_bonus) || format_bonus < 0 || format_bonus >= 1) {
    std::ostringstream s;
    s << "task-tuning format bonus " << format_bonus << " is outside [0, 1)";
    throw Error(s.str(), "the bonus must stay below the accuracy reward of 1; use e.g. 0 or 0.2");
  }
}

// paper.md §5 "Task-Tuning Only": RL for accuracy, no cloud; a call for help earns nothing.
double TaskTuningReward::operator()(const ParsedResponse& parsed, std::optional<bool> local_correct,
                                    std::optional<bool> /*cloud_correct*/) const {
  if (parsed.kind != ResponseKind::kLocalAnswer) return 0.0;
  const double format = parsed.well_formatted ? format_bonus_ : 0.0;
  return (require(local_correct, "local answer") ? 1.0 : 0.0) + format;
}

std::string reward_kind_name(RewardKind kind) {
  switch (kind) {
    case RewardKind::kHierarchical:
      return "hierarchical";
    case RewardKind::kTaskTuning:
      return "task-tuning";
  }
  return "unknown";
}

RewardFn make_reward(RewardKind kind, const RewardWeights& weights, bool allow_any_order,
                     double format_bonus) {
  switch (kind) {
    case RewardKind::kHierarchical:
      return HierarchicalReward(weights, allow_any_order);
    case RewardKind::kTaskTuning:
      return TaskTuningReward(format_bonus);
  }
  throw Error("unknown reward kind", "use one of: hierarchical, task-tuning");
}

}  // namespace handoff
