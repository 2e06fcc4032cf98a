// Group advantages: paper §3.3 (GAPG, Proposition 3.1) and the GRPO / Dr. GRPO baselines of paper.md §5.
#include "rl/pure/advantage.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace handoff {
namespace {

// Checks the group and returns its mean reward.
double checked_mean(const std::vector<double>& rewards, const char* estimator) {
  if (rewards.size() < 2) {
    std::ostringstream s;
    s << estimator << " advantages need a group of at least 2 responses, got " << rewards.size();
    throw Error(s.str(), "sample G >= 2 responses per prompt (the paper uses G = 8)");
  }
  double sum = 0;
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (!std::isfinite(rewards[i])) {
      std::ostringstream s;
      s << estimator << " advantages: reward " << i << " of the group is " << rewards[i];
      throw Error(s.str(), "rewards must be finite numbers; check the reward function's weights");
    }
    sum += rewards[i];
  }
  return sum / static_cast<double>(rewards.size());
}

}  // namespace

// Paper §3.3: ∇R ≈ 1/(G−1) Σ_i ∇log π(y_i|x) (r_i − r̄). No std normalisation (see the header).
std::vector<double> gapg_advantages(const std::vector<double>& rewards) {
  const double mean = checked_mean(rewards, "GAPG");
  const double scale = 1.0 / static_cast<double>(rewards.size() - 1);
  std::vector<double> out(rewards.size());
  for (size_t i = 0; i < rewards.size(); ++i) out[i] = (rewards[i] - mean) * scale;
  return out;
}

std::vector<double> grpo_advantages(const std::vector<double>& rewards, double eps) {
  if (!std::isfinite(eps) || eps <= 0) {
    std::ostringstream s;
    s << "GRPO advantages: eps " << eps << " is not a finite positive number";
    throw Error(s.str(), "use a small positive eps such as 1e-6");
  }
  const double mean = checked_mean(rewards, "GRPO");
  double ss = 0;
  for (double r : rewards) ss += (r - mean) * (r - mean);
  const double sd = std::sqrt(ss / static_cast<double>(rewards.size() - 1));  // sample std, as torch.std
  std::vector<double> out(rewards.size());
  for (size_t i = 0; i < rewards.size(); ++i) out[i] = (rewards[i] - mean) / (sd + eps);
  return out;
}

std::vector<double> dr_grpo_advantages(const std::vector<double>& rewards) {
  const double mean = checked_mean(rewards, "Dr. GRPO");
  std::vector<double> out(rewards.size());
  for (size_t i = 0; i < rewards.size(); ++i) out[i] = rewards[i] - mean;
  return out;
}

std::string advantage_kind_name(AdvantageKind kind) {
  switch (kind) {
    case AdvantageKind::kGapg:
      return "gapg";
    case AdvantageKind::kGrpo:
      return "grpo";
    case AdvantageKind::kDrGrpo:
      return "dr-grpo";
  }
  return "unknown";
}

std::vector<double> group_advantages(AdvantageKind kind, const std::vector<double>& rewards) {
  switch (kind) {
    case AdvantageKind::kGapg:
      return gapg_advantages(rewards);
    case AdvantageKind::kGrpo:
      return grpo_advantages(rewards);
    case AdvantageKind::kDrGrpo:
      return dr_grpo_advantages(rewards);
  }
  throw Error("unknown advantage estimator", "use one of: gapg, grpo, dr-grpo");
}

}  // namespace handoff
