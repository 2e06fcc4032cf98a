#include "route/probe_router.h"

#include "common/error.h"
#include "route/features.h"

namespace handoff::route {

ProbeRouter::ProbeRouter(const RouterDevice& device, Reads reads) : device_(device), reads_(reads) {
  if (!device_.model || !device_.tokenizer)
    throw Error("probe router: no device model to read features from", "pass the device checkpoint");
}

std::string ProbeRouter::key() const {
  return reads_ == Reads::kPrompt ? "prompt-router" : "post-inference-router";
}

std::string ProbeRouter::name() const {
  return reads_ == Reads::kPrompt ? "task-tuning & router (prompt classifier)"
                                  : "task-tuning & post-inference router";
}

at::Tensor ProbeRouter::features(const RouterSplit& split) const {
  std::vector<std::string> queries;
  for (const auto& p : split.items) queries.push_back(p.prompt);
  CausalLM model = device_.model;
  if (reads_ == Reads::kPrompt) return pooled_features(model, device_.speech(), queries);
  return pooled_features(model, device_.speech(), queries, split.device.text);
}

void ProbeRouter::fit(const RouterSplit& val) {
  const auto& c = val.device.local_correct;
  auto fail = torch::tensor(std::vector<float>(c.begin(), c.end()));
  fail = 1 - fail;
  probe_.fit(features(val), fail);
}

std::vector<double> ProbeRouter::score(const RouterSplit& split) {
  const at::Tensor p = probe_.predict(features(split));
  return std::vector<double>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
}

}  // namespace handoff::route
