#pragma once
// Calibrating a router to a cloud-call rate (paper.md §2: methods are compared at a call rate of 0.3; §5:
// "hand off its top-scored 30 %"). A router gives every item a score, higher = more likely to need the
// cloud; an item is handed off when its score is strictly above the threshold.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace handoff::route {

// The threshold t for which the fraction of `scores` strictly above t is at most `target_call_rate` and as
// close to it as the scores allow. With k = ⌊r·n⌋ (r·n rounded down after adding 1e-9, so 0.29·100 gives 29)
// and the scores sorted descending s₁ ≥ … ≥ sₙ:
//   k = 0 → t = s₁ (nothing is above the maximum);
//   k = n → t = the next double below sₙ (everything is above it; finite, so it can be saved as JSON);
//   else  → t = s_{k+1}: exactly k items lie above it, fewer when s_k = s_{k+1} — ties are broken toward
//           fewer calls, so the rate never exceeds the target on the calibration split.
// Meant for calibrating on a validation split and applying with route_above on the test split.
// Throws Error on empty or non-finite scores, or a rate outside [0, 1].
double calibrate_threshold(const std::vector<double>& scores, double target_call_rate);

// 1 where score > threshold.
std::vector<uint8_t> route_above(const std::vector<double>& scores, double threshold);

// Hands off exactly ⌊r·n⌋ items (rounded as above): the highest scores, ties going to the lower index.
// Unlike a threshold this always hits the rate; for routing the split the scores came from.
std::vector<uint8_t> route_top_fraction(const std::vector<double>& scores, double call_rate);

// Item indices by descending score, ties by ascending index (the order route_top_fraction hands off in).
std::vector<size_t> handoff_order(const std::vector<double>& scores);

struct CurvePoint {
  double call_rate = 0, accuracy = 0;
};

// The accuracy-vs-call-rate curve of a router: for k = 0..n, hand off the top k items of handoff_order and
// score each item by cloud_correct if handed off, else local_correct. Returns every k when n + 1 ≤
// max_points, else max_points values of k evenly spaced from 0 to n (both ends kept), rounded to the
// nearest integer. Throws Error on mismatched sizes, an empty input, non-finite scores or max_points < 2.
std::vector<CurvePoint> handoff_curve(const std::vector<double>& scores,
                                      const std::vector<uint8_t>& local_correct,
                                      const std::vector<uint8_t>& cloud_correct, size_t max_points = 50);

}  // namespace handoff::route
