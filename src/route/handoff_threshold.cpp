#include "route/handoff_threshold.h"

#include <cstdio>

#include "common/error.h"

namespace handoff::route {

HandoffThreshold::HandoffThreshold(const RouterDevice& device, const Task& task, int64_t max_new_tokens)
    : device_(device), task_(task), max_new_tokens_(max_new_tokens) {
  if (!device_.model || !device_.tokenizer)
    throw Error("hand-off threshold: no device model",
                "pass the checkpoint of a model that hands off itself");
}

std::string HandoffThreshold::name(const std::string& label, double threshold) {
  char text[64];
  std::snprintf(text, sizeof text, " + hand-off threshold %.3g calibrated to the rate", threshold);
  return label + text;
}

double HandoffThreshold::calibrate(const std::vector<Problem>& val, double rate) const {
  CausalLM model = device_.model;
  return calibrate_handoff_threshold(model, device_.speech(), task_, val, max_new_tokens_, rate);
}

DeviceVerdicts HandoffThreshold::verdicts(const std::vector<Problem>& items, double threshold) const {
  CausalLM model = device_.model;
  return device_verdicts(model, device_.speech(), task_, items, max_new_tokens_, threshold);
}

}  // namespace handoff::route
