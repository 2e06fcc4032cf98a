#pragma once
// The oracle: hands off exactly the device's errors (score 1 where its answer is wrong, 0 where right),
// whatever the call-rate target. An upper bound for any router on top of the same device.
#include "route/router.h"

namespace handoff::route {

class OracleRouter : public Router {
 public:
  std::string key() const override { return "oracle"; }
  std::string name() const override { return "oracle router (hands off exactly the device's errors)"; }
  std::vector<double> score(const RouterSplit& split) override;
  // 0.5 for every rate: the errors, all of them and nothing else.
  double calibrate(const std::vector<double>& val_scores, double rate) const override;
};

}  // namespace handoff::route
