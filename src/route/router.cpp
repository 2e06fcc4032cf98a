#include "route/router.h"

#include "common/error.h"
#include "route/confidence_router.h"
#include "route/oracle_router.h"
#include "route/probe_router.h"
#include "route/pure/calibration.h"
#include "route/random_router.h"

namespace handoff::route {

DeviceSpeech RouterDevice::speech() const {
  static const Protocol kDefault;
  if (!tokenizer) throw Error("the router needs the device model and its tokenizer");
  return {*tokenizer, protocol ? *protocol : kDefault};
}

double Router::calibrate(const std::vector<double>& val_scores, double rate) const {
  return route::calibrate_threshold(val_scores, rate);
}

std::vector<uint8_t> Router::decide(const std::vector<double>& scores, double threshold) const {
  return route::route_above(scores, threshold);
}

std::vector<std::string> router_keys() {
  return {"random", "prompt-router", "post-inference-router", "confidence", "oracle"};
}

std::unique_ptr<Router> make_router(const std::string& key, const RouterDevice& device, uint64_t seed) {
  if (key == "random") return std::make_unique<RandomRouter>(seed);
  if (key == "prompt-router") return std::make_unique<ProbeRouter>(device, ProbeRouter::Reads::kPrompt);
  if (key == "post-inference-router")
    return std::make_unique<ProbeRouter>(device, ProbeRouter::Reads::kPromptAndAnswer);
  if (key == "confidence") return std::make_unique<ConfidenceRouter>();
  if (key == "oracle") return std::make_unique<OracleRouter>();
  std::string known;
  for (const auto& k : router_keys()) known += (known.empty() ? "" : ", ") + k;
  throw Error("unknown router '" + key + "'", "known routers: " + known);
}

}  // namespace handoff::route
