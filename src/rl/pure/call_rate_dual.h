#pragma once
// Primal–dual control of the deployed call rate (issue 15; docs/method.md §3.4). The paper holds the budget
// only through the prompt filter's cap ρ|D¹| (§3.3), which bounds what the update *learns from*, not the rate
// at which the trained policy calls: measured here, GAPG's greedy call rate lands at 0.36–0.46 for a 0.30
// target. The constrained problem
//     max_θ E[r]   subject to   c(θ) = P_θ(hand-off) ≤ r*
// has the Lagrangian E[r] − λ (c(θ) − r*), λ ≥ 0. The policy step maximises E[r − λ·1{hand-off}] (a hand-off
// sample's reward is lowered by λ; with the group-level estimator this is the same as subtracting λ times the
// hand-off's own group advantage, as DA-GRPO puts a usage cost into the advantage), and the dual step is
// projected gradient ascent on λ from a measured rate:
//     λ ← clamp(λ + η (ĉ − r*), 0, λ_max).
// λ rises while the policy calls more than the target and falls (to 0 at the most) while it calls less, so a
// policy that under-calls is not pushed to call more than its reward asks for: the constraint is one-sided,
// like the budget.
//
// Plain dual ascent oscillates around the target when the policy responds sharply to the price (a linear
// objective in the policy is bang-bang; measured on the toy policy of tests/test_call_rate_dual.cpp: the rate
// swings 0.0–0.5 around a 0.3 target, only its time average is right). The price a hand-off pays is therefore
// the PI form of the PID Lagrangian (Stooke, Achiam & Abbeel, "Responsive Safety in Reinforcement Learning by
// PID Lagrangian Methods", ICML 2020): the integral λ above plus a proportional term on the last error,
//     price = clamp(λ + K_p (ĉ − r*), 0, λ_max),
// which damps the swing (the same toy settles at the target within 0.01 from above and below). K_p = 0 is
// plain dual ascent.
#include <string>

namespace handoff {

class CallRateDual {
 public:
  // target in (0, 1); step η > 0, kp ≥ 0 and lambda_max > 0, all finite: an Error otherwise (a non-positive
  // step never moves λ, so the rate would never be controlled).
  // two_sided: λ and the price may also go down to −lambda_max (a bonus for calling while the rate is below
  // the target), so the rate tracks the target from below too, instead of only being capped.
  CallRateDual(double target, double step, double kp, double lambda_max, bool two_sided = false);

  // One dual step from a measured call rate ĉ in [0, 1] (Error otherwise). Returns the new price.
  double update(double measured_rate);

  double lambda() const { return lambda_; }  // the integral term
  double target() const { return target_; }
  // The reward a sample loses for calling the cloud: clamp(λ + K_p (ĉ_last − r*), 0, λ_max); λ alone before
  // the first measurement.
  double handoff_cost() const;
  // Restores a saved λ and last measured rate (< 0: none yet) on resume; Error unless λ is finite and in
  // [0, lambda_max] and the rate is < 0 or in [0, 1].
  void restore(double lambda, double last_rate);
  double last_rate() const { return last_rate_; }

 private:
  double target_, step_, kp_, lambda_max_, lambda_min_;
  double lambda_ = 0.0, last_rate_ = -1.0;
};

}  // namespace handoff
