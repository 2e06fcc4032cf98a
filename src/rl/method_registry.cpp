#include "rl/method_registry.h"

#include "common/error.h"

namespace handoff {

const std::vector<RlMethod>& rl_methods() {
  static const std::vector<RlMethod> methods = {
      {"gapg", RewardKind::kHierarchical, AdvantageKind::kGapg, true, BudgetControl::kFilterCap,
       "GAPG (ours): the device decides",
       "hierarchical reward, group-level advantage (r-mean)/(G-1), adaptive prompt filtering under the "
       "budget"},
      {"collab-grpo", RewardKind::kHierarchical, AdvantageKind::kGrpo, false, BudgetControl::kNone,
       "collab-grpo: the device decides",
       "hierarchical reward, GRPO's std-normalised advantage, no filtering"},
      {"collab-drgrpo", RewardKind::kHierarchical, AdvantageKind::kGapg, false, BudgetControl::kNone,
       "collab-drgrpo: the device decides", "hierarchical reward, r-mean scaled like GAPG, no filtering"},
      {"task-tuning", RewardKind::kTaskTuning, AdvantageKind::kGapg, false, BudgetControl::kNone,
       "task-tuning: the device decides",
       "accuracy reward (a hand-off counts as wrong), r-mean scaled like GAPG; the routers' device"},
      {"grpo", RewardKind::kTaskTuning, AdvantageKind::kGrpo, false, BudgetControl::kNone,
       "grpo: the device decides", "accuracy reward, GRPO's std-normalised advantage (reference)"},
  };
  return methods;
}

std::vector<std::string> rl_method_names() {
  std::vector<std::string> names;
  for (const auto& m : rl_methods()) names.push_back(m.name);
  return names;
}

const RlMethod& find_rl_method(const std::string& name) {
  for (const auto& m : rl_methods())
    if (m.name == name) return m;
  std::string known;
  for (const auto& n : rl_method_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown RL algorithm '" + name + "'", "known: " + known);
}

std::string rl_methods_help() {
  std::string h;
  for (const auto& m : rl_methods())
    h += (h.empty() ? "" : "\n") + m.name + (m.name == "gapg" ? " (default)" : "") + ": " + m.help;
  return h;
}

}  // namespace handoff
