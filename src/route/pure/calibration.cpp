#include "route/pure/calibration.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <string>

#include "common/error.h"

namespace handoff::route {

namespace {

void check_scores(const std::vector<double>& scores, const char* who) {
  if (scores.empty()) throw Error(std::string(who) + ": no scores", "score at least one item");
  for (size_t i = 0; i < scores.size(); ++i)
    if (!std::isfinite(scores[i]))
      throw Error(std::string(who) + ": score " + std::to_string(i) + " is not finite",
                  "map NaN/inf router outputs to finite scores first");
}

// k = ⌊r·n⌋, with a 1e-9 allowance so that e.g. 0.29·100 = 28.999999999999996 counts as 29.
size_t items_for_rate(double rate, size_t n, const char* who) {
  if (!(rate >= 0 && rate <= 1))
    throw Error(std::string(who) + ": call rate " + std::to_string(rate) + " is outside [0, 1]",
                "pass a fraction such as 0.3");
  return std::min(n, static_cast<size_t>(std::floor(rate * static_cast<double>(n) + 1e-9)));
}

}  // namespace

double calibrate_threshold(const std::vector<double>& scores, double target_call_rate) {
  check_scores(scores, "calibrate_threshold");
  const size_t n = scores.size(), k = items_for_rate(target_call_rate, n, "calibrate_threshold");
  std::vector<double> sorted = scores;
  std::sort(sorted.begin(), sorted.end(), std::greater<double>());
  if (k == n) return std::nextafter(sorted.back(), -std::numeric_limits<double>::infinity());
  return sorted[k];  // s_{k+1} in 1-based order; k = 0 gives the maximum
}

std::vector<uint8_t> route_above(const std::vector<double>& scores, double threshold) {
  std::vector<uint8_t> out(scores.size());
  for (size_t i = 0; i < scores.size(); ++i) out[i] = scores[i] > threshold;
  return out;
}

std::vector<size_t> handoff_order(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

std::vector<uint8_t> route_top_fraction(const std::vector<double>& scores, double call_rate) {
  check_scores(scores, "route_top_fraction");
  const size_t k = items_for_rate(call_rate, scores.size(), "route_top_fraction");
  const std::vector<size_t> order = handoff_order(scores);
  std::vector<uint8_t> out(scores.size(), 0);
  for (size_t j = 0; j < k; ++j) out[order[j]] = 1;
  return out;
}

std::vector<CurvePoint> handoff_curve(const std::vector<double>& scores,
                                      const std::vector<uint8_t>& local_correct,
                                      const std::vector<uint8_t>& cloud_correct, size_t max_points) {
  check_scores(scores, "handoff_curve");
  const size_t n = scores.size();
  if (local_correct.size() != n || cloud_correct.size() != n)
    throw Error("handoff_curve: " + std::to_string(n) + " scores, " + std::to_string(local_correct.size()) +
                    " local and " + std::to_string(cloud_correct.size()) + " cloud verdicts",
                "pass one score and one verdict of each kind per item");
  if (max_points < 2) throw Error("handoff_curve: max_points < 2", "ask for at least the two end points");

  // correct_after[k]: items correct when the top k are handed off.
  const std::vector<size_t> order = handoff_order(scores);
  std::vector<size_t> correct_after(n + 1);
  size_t correct = 0;
  for (uint8_t c : local_correct) correct += c != 0;
  correct_after[0] = correct;
  for (size_t j = 0; j < n; ++j) {
    const size_t i = order[j];
    correct = correct - (local_correct[i] != 0) + (cloud_correct[i] != 0);
    correct_after[j + 1] = correct;
  }

  std::vector<size_t> ks;
  if (n + 1 <= max_points) {
    for (size_t k = 0; k <= n; ++k) ks.push_back(k);
  } else {
    // Spacing n / (max_points − 1) > 1, so the rounded values are distinct.
    for (size_t j = 0; j < max_points; ++j)
      ks.push_back(static_cast<size_t>(std::llround(static_cast<double>(j) * static_cast<double>(n) /
                                                    static_cast<double>(max_points - 1))));
  }
  std::vector<CurvePoint> curve;
  for (size_t k : ks)
    curve.push_back({static_cast<double>(k) / static_cast<double>(n),
                     static_cast<double>(correct_after[k]) / static_cast<double>(n)});
  return curve;
}

}  // namespace handoff::route
