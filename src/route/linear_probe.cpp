#include "route/linear_probe.h"

#include <torch/optim/adam.h>

#include "common/error.h"

namespace handoff {

void LinearProbe::fit(const at::Tensor& features, const at::Tensor& labels, int64_t iterations, double lr,
                      double weight_decay) {
  if (features.dim() != 2 || labels.dim() != 1 || features.size(0) != labels.size(0) || features.size(0) == 0)
    throw Error("LinearProbe::fit: features must be [N, D] and labels [N] with N > 0");
  torch::NoGradGuard outer;
  auto x = features.to(at::kFloat).to(at::kCPU);
  mean_ = x.mean(0);
  std_ = x.std(0).clamp_min(1e-6);
  x = (x - mean_) / std_;
  auto y = labels.to(at::kFloat).to(at::kCPU);
  w_ = at::zeros({x.size(1)}).set_requires_grad(true);
  b_ = at::zeros({1}).set_requires_grad(true);
  torch::optim::Adam opt({w_, b_}, torch::optim::AdamOptions(lr).weight_decay(weight_decay));
  torch::AutoGradMode grad(true);
  for (int64_t i = 0; i < iterations; ++i) {
    auto logits = at::matmul(x, w_) + b_;
    auto loss = at::binary_cross_entropy_with_logits(logits, y);
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  w_ = w_.detach();
  b_ = b_.detach();
}

at::Tensor LinearProbe::predict(const at::Tensor& features) const {
  if (!fitted()) throw Error("LinearProbe::predict before fit");
  torch::NoGradGuard ng;
  auto x = (features.to(at::kFloat).to(at::kCPU) - mean_) / std_;
  return at::sigmoid(at::matmul(x, w_) + b_);
}

}  // namespace handoff
