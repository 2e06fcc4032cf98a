#pragma once
// The learned routers: a logistic probe (linear_probe.h) on frozen features of the device model (features.h)
// trained on validation to predict where the device fails. Two variants, one file (they differ only in what
// the features read):
//   prompt router: the pooled hidden state of the prompt, before the device answers;
//   post-inference router: of the prompt followed by the device's own answer.
#include "route/linear_probe.h"
#include "route/router.h"

namespace handoff::route {

class ProbeRouter : public Router {
 public:
  enum class Reads { kPrompt, kPromptAndAnswer };
  ProbeRouter(const RouterDevice& device, Reads reads);
  std::string key() const override;
  std::string name() const override;
  // Labels: 1 where the device's validation answer is wrong (a hand-off it emits counts as wrong).
  void fit(const RouterSplit& val) override;
  std::vector<double> score(const RouterSplit& split) override;  // the probe's P(device fails)
  nlohmann::json state() const override { return probe_.to_json(); }
  void load_state(const nlohmann::json& state) override { probe_ = LinearProbe::from_json(state); }

 private:
  at::Tensor features(const RouterSplit& split) const;
  RouterDevice device_;
  Reads reads_;
  LinearProbe probe_;
};

}  // namespace handoff::route
