#pragma once
// The deployment knob of a model that decides itself (GAPG): the same model, handing off wherever its own
// P(<handoff>) reaches a threshold (sampler.h), the threshold calibrated on validation to a call-rate
// target. Unlike the score routers (router.h) it acts inside decoding: its decisions are a new device run.
#include <cstdint>
#include <string>
#include <vector>

#include "collab/verdicts.h"
#include "route/router.h"

namespace handoff::route {

class HandoffThreshold {
 public:
  HandoffThreshold(const RouterDevice& device, const Task& task, int64_t max_new_tokens);
  static std::string key() { return "handoff-threshold"; }
  // The report's row for method `label` at threshold t: "<label> + hand-off threshold t calibrated to the
  // rate".
  static std::string name(const std::string& label, double threshold);
  // Bisection on the model's greedy call rate on `val` (collab/verdicts.h calibrate_handoff_threshold).
  double calibrate(const std::vector<Problem>& val, double rate) const;
  // The model's greedy verdicts with the knob at `threshold`: its <handoff>s are the decisions.
  DeviceVerdicts verdicts(const std::vector<Problem>& items, double threshold) const;

 private:
  RouterDevice device_;
  const Task& task_;
  int64_t max_new_tokens_;
};

}  // namespace handoff::route
