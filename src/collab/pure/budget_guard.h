#pragma once
// The budget guard of the collaborative endpoint (issue 20, `serve --max-call-rate r`): the deployment knob
// of sampler.h — hand off exactly where the device's P(<handoff>) reaches a threshold — run as a controller
// so the realised call rate stays at r while the traffic's hand-off probabilities drift.
//
// The controller (why this one: docs/method.md, "Budget guard"):
// - feed-forward: the threshold is the (1 − p) quantile of the last `window` decisions' scores, where a
//   score is the highest P(<handoff>) the device gave on its way to the decision (a hand-off's score is its
//   peak up to the hand-off, ≥ the threshold it met; a kept query's is its peak over the whole reply);
// - feedback: p = r + gain · debt, where debt = Σ (r − handed_off) over every decision so far (clamped to
//   ±max_debt): an integral term that pays back the hand-offs a window ran over or under, so windows of
//   `window` decisions hold r far tighter than a fixed threshold's binomial noise would;
// - hysteresis: the threshold moves only when the rate it gives on the recent scores is more than
//   `dead_band` away from p, so it holds still while the stream does.
// Until `warmup` decisions are seen, the operator's base threshold is used.
#include <cstdint>
#include <deque>
#include <mutex>

namespace handoff {

struct BudgetGuardOptions {
  double target = 0.3;          // r: the call rate to hold, in (0, 1)
  int64_t window = 200;         // recent decisions whose scores set the threshold
  double base_threshold = 0.5;  // the threshold before the guard knows the traffic, and the reference of
                                // `changed` (what an unguarded knob at this value would have decided)
  double gain = 0.2;            // hand-off probability per hand-off of debt
  double dead_band = 0.02;      // hysteresis, in call rate
  double max_debt = 20;         // anti-windup: at most this many hand-offs owed either way
  int64_t warmup = 20;
};

// Throws Error naming the option that is out of range.
void check_budget_guard(const BudgetGuardOptions& o);

struct GuardState {
  double threshold = 0;     // for the next decision
  double rolling_rate = 0;  // hand-offs / decisions over the last `window` decisions (0 before any)
  double debt = 0;
  int64_t decisions = 0, changed = 0, threshold_moves = 0;
};

class BudgetGuard {
 public:
  explicit BudgetGuard(BudgetGuardOptions opts);

  double threshold() const;  // the threshold the next decision should use
  // One decision, made at the threshold threshold() gave when its decode began: whether the device handed
  // off and its score. Returns whether the guard changed the decision: a kept query whose score reached the
  // base (exact: the base would have handed off), or a hand-off whose score is below the base — where the
  // base would not have handed off *at that point*; it might have later in the reply, which the stopped
  // decode cannot show, so hand-offs flagged changed are an upper bound. Every decision counts, whether or
  // not its cloud call then succeeds: the guard holds the device's call rate. Thread-safe.
  bool record(bool handed_off, double score);

  GuardState state() const;
  const BudgetGuardOptions& options() const { return opts_; }

 private:
  double rate_at(double threshold) const;  // share of recent scores ≥ threshold; under mu_
  void retune();                           // under mu_

  BudgetGuardOptions opts_;
  mutable std::mutex mu_;
  std::deque<float> scores_;
  std::deque<bool> handed_off_;
  int64_t in_window_ = 0;  // hand-offs in handed_off_
  double threshold_;
  GuardState totals_;
};

}  // namespace handoff
