#pragma once
// Every method of the comparison on one held-out set (paper §5 rows + practitioners' routers): a method is
// its hand-off decisions over the device's and the cloud's verdicts (collab/verdicts.h):
// accuracy = mean(called ? cloud correct : device's local answer correct).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collab/verdicts.h"
#include "tasks/task.h"

namespace handoff {

struct MethodRow {
  std::string method;
  std::vector<uint8_t> correct, called;
  std::vector<int> difficulty;
  double device_tokens = 0, cloud_tokens = 0;  // per query
  double device_ms = 0, cloud_ms = 0;          // per query: the latency split (device first, then the cloud)
  double accuracy() const;
  double call_rate() const;
};

// The model decides itself (GAPG, collaboration-aware tuning): its own <handoff>s go to the cloud.
MethodRow self_routed(const std::string& name, const DeviceVerdicts& d, const CloudVerdicts& c,
                      const std::vector<Problem>& items);
// A router on top of a device: hand off where route[i] (or where the device itself handed off).
MethodRow routed(const std::string& name, const DeviceVerdicts& d, const CloudVerdicts& c,
                 const std::vector<Problem>& items, const std::vector<uint8_t>& route);

}  // namespace handoff
