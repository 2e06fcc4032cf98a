#include "eval/pure/metrics.h"

#include <map>

#include "common/error.h"

namespace handoff::eval {

namespace {

double mean_of_flags(const std::vector<uint8_t>& flags) {
  size_t on = 0;
  for (uint8_t f : flags) on += f != 0;
  return static_cast<double>(on) / static_cast<double>(flags.size());
}

}  // namespace

void validate(const MethodResult& r) {
  const std::string who = "method '" + r.method + "'";
  if (r.correct.empty()) throw Error(who + ": no evaluated items", "evaluate at least one item");
  if (r.called_cloud.size() != r.correct.size())
    throw Error(who + ": " + std::to_string(r.called_cloud.size()) + " hand-off flags for " +
                    std::to_string(r.correct.size()) + " items",
                "record one called_cloud flag per item");
  if (!r.difficulty.empty() && r.difficulty.size() != r.correct.size())
    throw Error(who + ": " + std::to_string(r.difficulty.size()) + " difficulties for " +
                    std::to_string(r.correct.size()) + " items",
                "record one difficulty per item, or none");
}

double accuracy(const MethodResult& r) {
  validate(r);
  return mean_of_flags(r.correct);
}

double call_rate(const MethodResult& r) {
  validate(r);
  return mean_of_flags(r.called_cloud);
}

double latency_ms_mean(const MethodResult& r) {
  return r.device_ms_mean + r.cloud_ms_mean;
}

std::vector<DifficultySlice> by_difficulty(const MethodResult& r) {
  validate(r);
  struct Counts {
    size_t n = 0, correct = 0, called = 0;
  };
  std::map<int, Counts> counts;
  for (size_t i = 0; i < r.difficulty.size(); ++i) {
    Counts& c = counts[r.difficulty[i]];
    ++c.n;
    c.correct += r.correct[i] != 0;
    c.called += r.called_cloud[i] != 0;
  }
  std::vector<DifficultySlice> out;
  for (const auto& [d, c] : counts)
    out.push_back({d, c.n, static_cast<double>(c.correct) / static_cast<double>(c.n),
                   static_cast<double>(c.called) / static_cast<double>(c.n)});
  return out;
}

GapRecovered gap_recovered(double acc, double acc_device_only, double acc_cloud_only) {
  const double gap = acc_cloud_only - acc_device_only;
  GapRecovered g;
  if (!(gap > 1e-12)) return g;  // also catches NaN anchors
  g.value = (acc - acc_device_only) / gap;
  g.defined = true;
  return g;
}

GapRecovered gap_recovered(const MethodResult& r, const MethodResult& device_only,
                           const MethodResult& cloud_only) {
  return gap_recovered(accuracy(r), accuracy(device_only), accuracy(cloud_only));
}

ConfidenceInterval accuracy_ci(const MethodResult& r, const BootstrapOptions& options) {
  validate(r);
  return bootstrap_mean_ci(r.correct, options);
}

}  // namespace handoff::eval
