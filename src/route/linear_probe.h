#pragma once
// A logistic-regression probe: the external router's classifier head. It reads frozen features (the device
// model's pooled hidden state of the prompt, or of prompt + answer) and predicts P(device fails).
#include <ATen/Tensor.h>

namespace handoff {

class LinearProbe {
 public:
  // features [N, D] float, labels [N] in {0, 1}. Features are standardised with the training statistics.
  void fit(const at::Tensor& features, const at::Tensor& labels, int64_t iterations = 300, double lr = 0.05,
           double weight_decay = 1e-3);
  at::Tensor predict(const at::Tensor& features) const;  // [N] probabilities
  bool fitted() const { return w_.defined(); }

 private:
  at::Tensor mean_, std_, w_, b_;
};

}  // namespace handoff
