#pragma once
// A logistic-regression probe: the external router's classifier head. It reads frozen features (the device
// model's pooled hidden state of the prompt, or of prompt + answer) and predicts P(device fails).
#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

namespace handoff {

class LinearProbe {
 public:
  // features [N, D] float, labels [N] in {0, 1}. Features are standardised with the training statistics.
  void fit(const at::Tensor& features, const at::Tensor& labels, int64_t iterations = 300, double lr = 0.05,
           double weight_decay = 1e-3);
  at::Tensor predict(const at::Tensor& features) const;  // [N] probabilities
  bool fitted() const { return w_.defined(); }
  // The fitted state {"mean", "std", "weight": [D floats each], "bias"}, and back: from_json throws Error on
  // anything else (missing or mismatched arrays, non-finite numbers, a std ≤ 0).
  nlohmann::json to_json() const;
  static LinearProbe from_json(const nlohmann::json& j);

 private:
  at::Tensor mean_, std_, w_, b_;
};

}  // namespace handoff
