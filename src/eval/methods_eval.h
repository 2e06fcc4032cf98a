#pragma once
// Every method of the comparison on one held-out set (paper §5 rows + practitioners' routers).
// Cloud answers come once per item through the real HTTP cloud (cached); a method is then its hand-off
// decisions: accuracy = mean(called ? cloud correct : device's local answer correct).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collab/cloud_answers.h"
#include "io/checkpoint.h"
#include "tasks/task.h"

namespace handoff {

struct CloudVerdicts {
  std::vector<uint8_t> correct;
  std::vector<int64_t> tokens;
  std::vector<double> latency_ms;  // measured HTTP round trip per item (4 requests in flight)
};
CloudVerdicts cloud_verdicts(CloudAnswerCache& cloud, const Task& task, const std::vector<Problem>& items);

struct DeviceVerdicts {
  std::vector<uint8_t> local_correct, handoff;
  std::vector<float> mean_logprob;  // of the greedy completion
  std::vector<int64_t> tokens;
  std::vector<std::string> text;
  // Decode time per token at batch 1 (measured once on the model): a query's device latency is estimated as
  // its tokens × this, as on a device answering one user at a time.
  double ms_per_token = 0;
};
DeviceVerdicts device_verdicts(CausalLM& model, const Tokenizer& tok, const Task& task,
                               const std::vector<Problem>& items, int64_t max_new_tokens,
                               double handoff_threshold = 1.1);
// The hand-off threshold (sampler.h's knob) at which the model's greedy call rate on `items` is closest to
// `rate` from below (bisection on a log scale; the call rate falls as the threshold rises).
double calibrate_handoff_threshold(CausalLM& model, const Tokenizer& tok, const Task& task,
                                   const std::vector<Problem>& items, int64_t max_new_tokens, double rate);

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
