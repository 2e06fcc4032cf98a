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
//
// Two-sided, the price may become a bonus while the greedy rate is below the target. The greedy rate lags
// the sampled one by tens of steps (the policy calls in its samples before the call is the argmax), so
// integrating the greedy error alone winds the bonus up while the samples already call more than the
// target: measured after `--solve-first`, the sampled rate jumped to 0.6–0.77 and the practice on the hard
// items it took was lost (docs/results/2026-12-05-chain-solve-first/). With bonus_follows_samples, while
// λ ≤ 0 and the greedy rate is below the target the error is taken from the larger of the greedy rate and
// the rollouts' sampled rate since the last measurement (the leading signal), and λ and the price are
// capped at 0 — the samples calling too much withdraw the bonus, never add a price. The penalty side is
// unchanged: it answers the greedy (deployed) rate only. This is conditional integration, the usual
// anti-windup of a PI controller whose actuator saturates or lags.
#include <string>

namespace handoff {

class CallRateDual {
 public:
  // target in (0, 1); step η > 0, kp ≥ 0 and lambda_max > 0, all finite: an Error otherwise (a non-positive
  // step never moves λ, so the rate would never be controlled).
  // two_sided: λ and the price may also go down to −lambda_max (a bonus for calling while the rate is below
  // the target), so the rate tracks the target from below too, instead of only being capped.
  // bonus_follows_samples (two-sided only, an Error otherwise): the bonus side's anti-windup above.
  CallRateDual(double target, double step, double kp, double lambda_max, bool two_sided = false,
               bool bonus_follows_samples = false);

  // One dual step from a measured greedy call rate ĉ in [0, 1] and the rollouts' sampled rate since the
  // last step (< 0: unknown; used only with bonus_follows_samples); an Error otherwise. Returns the price.
  double update(double measured_rate, double sampled_rate = -1.0);

  double lambda() const { return lambda_; }  // the integral term
  double target() const { return target_; }
  // The reward a sample loses for calling the cloud: clamp(λ + K_p (ĉ_last − r*), 0, λ_max); λ alone before
  // the first measurement.
  double handoff_cost() const;
  // Restores a saved λ, last measured rate and last sampled rate (< 0: none yet) on resume; Error unless λ
  // is finite and in its range and the rates are < 0 or in [0, 1].
  void restore(double lambda, double last_rate, double last_sampled = -1.0);
  double last_rate() const { return last_rate_; }
  double last_sampled() const { return last_sampled_; }

 private:
  // Whether the bonus side's anti-windup governs at this λ and these rates, and the error it then uses.
  bool bonus_guarded(double lambda, double greedy, double sampled) const;
  double error(double lambda, double greedy, double sampled) const;

  double target_, step_, kp_, lambda_max_, lambda_min_;
  bool bonus_follows_samples_;
  double lambda_ = 0.0, last_rate_ = -1.0, last_sampled_ = -1.0;
};

}  // namespace handoff
