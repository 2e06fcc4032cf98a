#pragma once
// The device's and the cloud's verdicts on a set of items, the plain data every method and router of the
// comparison is computed from. Cloud answers come once per item through the real HTTP cloud (cached).
#include <cstdint>
#include <string>
#include <vector>

#include "collab/cloud_answers.h"
#include "collab/device_run.h"
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
// The greedy completions of `items` (item i decoded with seed i), the model left in eval mode.
// handoff_threshold as in device_sampling (> 1: off).
std::vector<DeviceOutput> greedy_device_outputs(CausalLM& model, const DeviceSpeech& io,
                                                const std::vector<Problem>& items, int64_t max_new_tokens,
                                                double handoff_threshold = 1.1);
DeviceVerdicts device_verdicts(CausalLM& model, const DeviceSpeech& io, const Task& task,
                               const std::vector<Problem>& items, int64_t max_new_tokens,
                               double handoff_threshold = 1.1);
// The hand-off threshold (sampler.h's knob) at which the model's greedy call rate on `items` is closest to
// `rate` from below (bisection on a log scale; the call rate falls as the threshold rises).
double calibrate_handoff_threshold(CausalLM& model, const DeviceSpeech& io, const Task& task,
                                   const std::vector<Problem>& items, int64_t max_new_tokens, double rate);

}  // namespace handoff
