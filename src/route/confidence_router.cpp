#include "route/confidence_router.h"

namespace handoff::route {

std::vector<double> ConfidenceRouter::score(const RouterSplit& split) {
  std::vector<double> out;
  for (float x : split.device.mean_logprob) out.push_back(-x);
  return out;
}

}  // namespace handoff::route
