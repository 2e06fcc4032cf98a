#pragma once
// Confidence threshold: hand off where the device was least sure of its own greedy answer. Score = −(mean
// log-probability of the completion's tokens).
#include "route/router.h"

namespace handoff::route {

class ConfidenceRouter : public Router {
 public:
  std::string key() const override { return "confidence"; }
  std::string name() const override { return "task-tuning & confidence threshold"; }
  std::vector<double> score(const RouterSplit& split) override;
};

}  // namespace handoff::route
