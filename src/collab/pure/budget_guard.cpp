#include "collab/pure/budget_guard.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace handoff {

void check_budget_guard(const BudgetGuardOptions& o) {
  if (!(o.target > 0 && o.target < 1))
    throw Error("--max-call-rate must be in (0, 1), got " + std::to_string(o.target));
  if (o.window < 10 || o.window > 1000000)
    throw Error("--call-rate-window must be in [10, 1000000], got " + std::to_string(o.window));
  if (!(o.base_threshold > 0 && o.base_threshold <= 1))
    throw Error("the budget guard's base threshold must be in (0, 1], got " +
                std::to_string(o.base_threshold));
  if (!(o.gain > 0 && o.gain <= 1) || !(o.dead_band >= 0 && o.dead_band < 0.5) || !(o.max_debt > 0) ||
      o.warmup < 1)
    throw Error("the budget guard's gain, dead band, debt limit or warm-up is out of range");
}

BudgetGuard::BudgetGuard(BudgetGuardOptions opts) : opts_(opts), threshold_(opts.base_threshold) {
  check_budget_guard(opts_);
}

double BudgetGuard::threshold() const {
  std::lock_guard<std::mutex> lock(mu_);
  return threshold_;
}

bool BudgetGuard::record(bool handed_off, double score) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool changed = handed_off ? score < opts_.base_threshold : score >= opts_.base_threshold;
  scores_.push_back(static_cast<float>(score));
  handed_off_.push_back(handed_off);
  in_window_ += handed_off ? 1 : 0;
  while (static_cast<int64_t>(scores_.size()) > opts_.window) {
    in_window_ -= handed_off_.front() ? 1 : 0;
    scores_.pop_front();
    handed_off_.pop_front();
  }
  totals_.debt =
      std::clamp(totals_.debt + opts_.target - (handed_off ? 1.0 : 0.0), -opts_.max_debt, opts_.max_debt);
  totals_.decisions += 1;
  totals_.changed += changed ? 1 : 0;
  if (totals_.decisions >= opts_.warmup) retune();
  return changed;
}

double BudgetGuard::rate_at(double threshold) const {
  const auto n = std::count_if(scores_.begin(), scores_.end(), [&](float s) { return s >= threshold; });
  return static_cast<double>(n) / static_cast<double>(scores_.size());
}

void BudgetGuard::retune() {
  const double p = std::clamp(opts_.target + opts_.gain * totals_.debt, 0.0, 1.0);
  if (std::abs(rate_at(threshold_) - p) <= opts_.dead_band) return;
  // The (1 − p) quantile: the k-th highest recent score, k = round(p · n), hands off k of the last n.
  std::vector<float> s(scores_.begin(), scores_.end());
  const auto n = static_cast<int64_t>(s.size());
  const int64_t k = std::clamp<int64_t>(std::llround(p * static_cast<double>(n)), 0, n);
  double next = 1.0;  // k = 0: nothing the recent traffic scored is worth a call (P ≥ 1 almost never)
  if (k > 0) {
    std::nth_element(s.begin(), s.begin() + (k - 1), s.end(), std::greater<float>());
    next = s[static_cast<size_t>(k - 1)];
  }
  if (next != threshold_) totals_.threshold_moves += 1;
  threshold_ = next;
}

GuardState BudgetGuard::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  GuardState out = totals_;
  out.threshold = threshold_;
  out.rolling_rate =
      handed_off_.empty() ? 0.0 : static_cast<double>(in_window_) / static_cast<double>(handed_off_.size());
  return out;
}

}  // namespace handoff
