#pragma once
// Group advantages: the weight of ∇log π(y_i|x) for each of the G responses to one prompt, from the group's
// rewards alone. Paper §3.3 (Proposition 3.1; paper.md §4): GAPG; plus the GRPO and Dr. GRPO baselines.
//
// Why GAPG has no division by the group's standard deviation: the std rescales every group to unit spread, so
// a group whose best response is a local solve (α_a) and one whose best is a cloud call (α_c) push equally
// hard — the α_a vs α_c hierarchy of the reward is erased and the policy collapses onto the cloud. The std
// also makes the estimator biased (see the unbiasedness test in tests/test_gapg.cpp).
#include <string>
#include <vector>

namespace handoff {

// GAPG (paper §3.3): A_i = (r_i − r̄) / (G − 1). Then Σ_i A_i ∇log π(y_i) is an unbiased estimate of ∇E[r]:
// r_i − r̄ = (G−1)/G · (r_i − r̄_{−i}), so the sum is the average over i of the leave-one-out estimates
// (r_i − r̄_{−i}) ∇log π(y_i), each unbiased because r̄_{−i} is independent of y_i.
// Throws Error if G < 2 or a reward is not finite.
std::vector<double> gapg_advantages(const std::vector<double>& rewards);

// GRPO: A_i = (r_i − r̄) / (s + eps), s the SAMPLE standard deviation (divisor G − 1), as torch.std computes
// it in TRL and verl. A group of equal rewards gets all-zero advantages. Used by the grpo and collab-grpo
// baselines. Throws Error if G < 2, a reward is not finite, or eps is not a finite positive number.
std::vector<double> grpo_advantages(const std::vector<double>& rewards, double eps = 1e-6);

// Dr. GRPO: A_i = r_i − r̄ (no scaling): (G − 1) × the GAPG advantage, so the same direction, with a scale the
// learning rate absorbs when G is fixed.
// Throws Error if G < 2 or a reward is not finite.
std::vector<double> dr_grpo_advantages(const std::vector<double>& rewards);

enum class AdvantageKind { kGapg, kGrpo, kDrGrpo };

// "gapg" | "grpo" | "dr-grpo".
std::string advantage_kind_name(AdvantageKind kind);

// Dispatch by kind (GRPO with its default eps).
std::vector<double> group_advantages(AdvantageKind kind, const std::vector<double>& rewards);

}  // namespace handoff
