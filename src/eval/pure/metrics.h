#pragma once
// One method's evaluation on a held-out set, and the numbers paper.md §5 reports for it: accuracy (with a
// bootstrap interval), cloud-call rate, a per-difficulty breakdown and the share of the device→cloud gap it
// recovers.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eval/pure/bootstrap.h"

namespace handoff::eval {

// Per-item outcomes of one method (uint8_t flags: non-zero = true). All *_mean fields are averages over
// *every* query, calls or not: a method that calls the cloud on 30 % of the items has cloud_tokens_mean =
// 0.3 × (cloud tokens per call). Latency is device_ms_mean + cloud_ms_mean (device first, then the cloud).
struct MethodResult {
  std::string method;
  std::vector<uint8_t> correct;       // final answer correct (local or cloud)
  std::vector<uint8_t> called_cloud;  // handed off to the cloud
  std::vector<int> difficulty;        // optional (empty = unknown), else one per item
  double device_tokens_mean = 0, cloud_tokens_mean = 0;
  double device_ms_mean = 0, cloud_ms_mean = 0;
};

// Throws Error unless `correct` is non-empty, `called_cloud` has the same size, and `difficulty` is empty or
// the same size. Every function below validates its inputs this way.
void validate(const MethodResult& r);

double accuracy(const MethodResult& r);
double call_rate(const MethodResult& r);
double latency_ms_mean(const MethodResult& r);  // device_ms_mean + cloud_ms_mean

struct DifficultySlice {
  int difficulty = 0;
  size_t count = 0;
  double accuracy = 0, call_rate = 0;
};
// One slice per distinct difficulty, ascending; empty when the result carries no difficulties.
std::vector<DifficultySlice> by_difficulty(const MethodResult& r);

// Share of the device→cloud gap a method recovers: (acc − acc_device_only) / (acc_cloud_only −
// acc_device_only). Not clamped: below 0 the method is worse than the device alone, above 1 better than the
// cloud alone. When the cloud is not better than the device (denominator ≤ 1e-12) the share is undefined:
// `defined` is false and `value` NaN (no throw, so one bad anchor pair does not abort a whole report).
struct GapRecovered {
  double value = std::numeric_limits<double>::quiet_NaN();
  bool defined = false;
};
GapRecovered gap_recovered(double acc, double acc_device_only, double acc_cloud_only);
GapRecovered gap_recovered(const MethodResult& r, const MethodResult& device_only,
                           const MethodResult& cloud_only);

// Percentile bootstrap interval of the accuracy (bootstrap.h).
ConfidenceInterval accuracy_ci(const MethodResult& r, const BootstrapOptions& options = {});

}  // namespace handoff::eval
