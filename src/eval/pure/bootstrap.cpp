#include "eval/pure/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace handoff::eval {

namespace {
__extension__ typedef unsigned __int128 uint128;  // GCC/Clang; __extension__ keeps -Wpedantic quiet
}  // namespace

uint64_t uniform_index(std::mt19937_64& rng, uint64_t n) {
  if (n == 0) throw Error("uniform_index: the range [0, n) is empty", "pass n >= 1");
  // Lemire's multiply-and-reject: the high word of x·n, rejecting the 2^64 mod n low words that would bias
  // it. The modulo runs only when a rejection is possible, so the common draw costs no division.
  uint128 m = static_cast<uint128>(rng()) * n;
  if (static_cast<uint64_t>(m) < n) {
    const uint64_t reject_below = (0 - n) % n;  // 2^64 mod n
    while (static_cast<uint64_t>(m) < reject_below) m = static_cast<uint128>(rng()) * n;
  }
  return static_cast<uint64_t>(m >> 64);
}

namespace {

void check_options(const BootstrapOptions& o) {
  if (o.resamples < 1)
    throw Error("bootstrap: " + std::to_string(o.resamples) + " resamples", "use at least 1 (default 2000)");
  if (!(o.level > 0 && o.level < 1))
    throw Error("bootstrap: confidence level " + std::to_string(o.level) + " is outside (0, 1)",
                "use e.g. 0.95");
}

// Type-7 quantile of sorted values: linear interpolation at position q·(B−1).
double sorted_quantile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t i = static_cast<size_t>(std::floor(pos));
  if (i + 1 >= sorted.size()) return sorted.back();
  const double frac = pos - static_cast<double>(i);
  return sorted[i] + frac * (sorted[i + 1] - sorted[i]);
}

// `values` is non-empty and finite (checked by the callers).
ConfidenceInterval percentile_interval(const std::vector<double>& values, const BootstrapOptions& o) {
  check_options(o);
  const size_t n = values.size();
  double total = 0;
  for (double v : values) total += v;
  std::mt19937_64 rng(o.seed);
  std::vector<double> means(static_cast<size_t>(o.resamples));
  for (double& m : means) {
    double s = 0;
    for (size_t i = 0; i < n; ++i) s += values[uniform_index(rng, n)];
    m = s / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  ConfidenceInterval ci;
  ci.mean = total / static_cast<double>(n);
  ci.level = o.level;
  ci.lo = sorted_quantile(means, (1 - o.level) / 2);
  ci.hi = sorted_quantile(means, (1 + o.level) / 2);
  return ci;
}

}  // namespace

ConfidenceInterval bootstrap_mean_ci(const std::vector<double>& values, const BootstrapOptions& options) {
  if (values.empty()) throw Error("bootstrap: no values to resample", "evaluate at least one item");
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw Error("bootstrap: value " + std::to_string(i) + " is not finite", "drop or fix NaN/inf values");
  return percentile_interval(values, options);
}

ConfidenceInterval bootstrap_mean_ci(const std::vector<uint8_t>& outcomes, const BootstrapOptions& options) {
  if (outcomes.empty()) throw Error("bootstrap: no outcomes to resample", "evaluate at least one item");
  std::vector<double> as_double(outcomes.size());
  for (size_t i = 0; i < outcomes.size(); ++i) as_double[i] = outcomes[i] != 0 ? 1.0 : 0.0;
  return percentile_interval(as_double, options);
}

ConfidenceInterval paired_difference_ci(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                                        const BootstrapOptions& options) {
  if (a.size() != b.size())
    throw Error(
        "paired bootstrap: " + std::to_string(a.size()) + " outcomes against " + std::to_string(b.size()),
        "both methods must be evaluated on the same items");
  if (a.empty()) throw Error("paired bootstrap: no items to resample", "evaluate at least one item");
  std::vector<double> diff(a.size());
  for (size_t i = 0; i < a.size(); ++i) diff[i] = (a[i] != 0 ? 1.0 : 0.0) - (b[i] != 0 ? 1.0 : 0.0);
  return percentile_interval(diff, options);
}

}  // namespace handoff::eval
