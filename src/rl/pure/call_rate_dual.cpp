// Dual ascent on the call-rate constraint (issue 15, docs/method.md §3.4).
#include "rl/pure/call_rate_dual.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/error.h"

namespace handoff {

namespace {
std::string num(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}
}  // namespace

CallRateDual::CallRateDual(double target, double step, double kp, double lambda_max, bool two_sided,
                           bool bonus_follows_samples)
    : target_(target),
      step_(step),
      kp_(kp),
      lambda_max_(lambda_max),
      lambda_min_(two_sided ? -lambda_max : 0.0),
      bonus_follows_samples_(bonus_follows_samples) {
  if (bonus_follows_samples && !two_sided)
    throw Error("the call-rate controller's bonus can follow the sampled rate only when it is two-sided",
                "add --dual-two-sided, or drop --dual-bonus-sampled");
  if (!std::isfinite(target) || target <= 0 || target >= 1)
    throw Error("call-rate target " + num(target) + " is outside (0, 1)", "give e.g. --max-call-rate 0.3");
  if (!std::isfinite(step) || step <= 0)
    throw Error("the call-rate controller's step " + num(step) + " must be a positive number",
                "with step <= 0 the multiplier never moves and the rate is not controlled; try 2");
  if (!std::isfinite(kp) || kp < 0)
    throw Error("the call-rate controller's proportional gain " + num(kp) + " must be a number >= 0");
  if (!std::isfinite(lambda_max) || lambda_max <= 0)
    throw Error("the call-rate controller's lambda_max " + num(lambda_max) + " must be a positive number");
}

bool CallRateDual::bonus_guarded(double lambda, double greedy, double sampled) const {
  return bonus_follows_samples_ && sampled >= 0 && lambda <= 0 && greedy < target_;
}

double CallRateDual::error(double lambda, double greedy, double sampled) const {
  return (bonus_guarded(lambda, greedy, sampled) ? std::max(greedy, sampled) : greedy) - target_;
}

double CallRateDual::update(double measured_rate, double sampled_rate) {
  if (!std::isfinite(measured_rate) || measured_rate < 0 || measured_rate > 1)
    throw Error("call-rate controller: measured rate " + num(measured_rate) + " is not in [0, 1]",
                "a wiring bug in the caller");
  if (!std::isfinite(sampled_rate) || sampled_rate > 1)
    throw Error("call-rate controller: sampled rate " + num(sampled_rate) + " is not in [0, 1]",
                "a wiring bug in the caller");
  const bool guarded = bonus_guarded(lambda_, measured_rate, sampled_rate);
  const double e = error(lambda_, measured_rate, sampled_rate);
  lambda_ = std::clamp(lambda_ + step_ * e, lambda_min_, guarded ? 0.0 : lambda_max_);
  last_rate_ = measured_rate;
  last_sampled_ = sampled_rate < 0 ? -1.0 : sampled_rate;
  return handoff_cost();
}

double CallRateDual::handoff_cost() const {
  if (last_rate_ < 0) return lambda_;
  const bool guarded = bonus_guarded(lambda_, last_rate_, last_sampled_);
  return std::clamp(lambda_ + kp_ * error(lambda_, last_rate_, last_sampled_), lambda_min_,
                    guarded ? 0.0 : lambda_max_);
}

void CallRateDual::restore(double lambda, double last_rate, double last_sampled) {
  if (!std::isfinite(lambda) || lambda < lambda_min_ || lambda > lambda_max_)
    throw Error("call-rate controller: saved lambda " + num(lambda) + " is not in [" + num(lambda_min_) +
                    ", " + num(lambda_max_) + "]",
                "the run directory's trainer_state.json is damaged or from other options");
  if (!std::isfinite(last_rate) || last_rate > 1)
    throw Error("call-rate controller: saved rate " + num(last_rate) + " is not in [0, 1]",
                "the run directory's trainer_state.json is damaged");
  if (!std::isfinite(last_sampled) || last_sampled > 1)
    throw Error("call-rate controller: saved sampled rate " + num(last_sampled) + " is not in [0, 1]",
                "the run directory's trainer_state.json is damaged");
  lambda_ = lambda;
  last_rate_ = last_rate < 0 ? -1.0 : last_rate;
  last_sampled_ = last_sampled < 0 ? -1.0 : last_sampled;
}

}  // namespace handoff
