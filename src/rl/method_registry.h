#pragma once
// The RL methods, in one table that the CLI, the options, the trainer and the demo all read (as verl
// registers its advantage estimators). They share one trainer and differ in reward, advantage, prompt
// filtering and budget control (paper §5; docs/method.md):
//   gapg           hierarchical reward, (r−r̄)/(G−1), adaptive prompt filtering under ρ   (ours, §3.2–3.3)
//   collab-grpo    hierarchical reward, GRPO's std-normalised advantage, no filtering  ("Collaboration-Aware
//                  Tuning", v1)
//   collab-drgrpo  hierarchical reward, r−r̄ scaled like GAPG, no filtering            (the same, v2)
//   task-tuning    accuracy reward (a hand-off counts as wrong), r−r̄ scaled like GAPG  ("Task-Tuning Only")
//   grpo           accuracy reward, GRPO's std-normalised advantage                     (reference)
#include <string>
#include <vector>

#include "rl/pure/advantage.h"
#include "rl/pure/reward.h"

namespace handoff {

// How a method keeps cloud calls in check during training.
enum class BudgetControl {
  kNone,       // nothing: the call rate follows from the reward alone
  kFilterCap,  // adaptive prompt filtering: kept D² ≤ ρ·|D¹| (paper §3.3)
};

struct RlMethod {
  std::string name;         // --algo
  RewardKind reward;        // §3.2 hierarchical, or accuracy only
  AdvantageKind advantage;  // §3.3 GAPG's, or GRPO's
  bool filter;              // §3.3 adaptive prompt filtering (D¹ ∪ capped D²)
  BudgetControl budget;     // what holds the call rate during training
  std::string label;        // the report's row name when the device decides itself
  std::string help;         // one line for --help
  bool needs_cloud() const { return reward == RewardKind::kHierarchical; }
};

// Every method, in the order the CLI and reports list them.
const std::vector<RlMethod>& rl_methods();
// The method named `name`; throws Error listing the known names.
const RlMethod& find_rl_method(const std::string& name);
std::vector<std::string> rl_method_names();
// "gapg (default) | collab-grpo | …" with one line per method, for --algo's help.
std::string rl_methods_help();

}  // namespace handoff
