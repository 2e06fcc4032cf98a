#include "route/linear_probe.h"

#include <torch/optim/adam.h>

#include <cmath>
#include <string>
#include <vector>

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

namespace {

std::vector<float> floats_of(const at::Tensor& t) {
  const auto c = t.to(at::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

at::Tensor tensor_of(const nlohmann::json& j, const char* field, size_t size) {
  const std::string where = std::string("linear probe: '") + field + "'";
  if (!j.contains(field) || !j[field].is_array() || (size > 0 && j[field].size() != size))
    throw Error(where + " is missing or has the wrong length", "refit the router");
  std::vector<float> v;
  for (const auto& x : j[field]) {
    if (!x.is_number() || !std::isfinite(x.get<double>())) throw Error(where + " holds a non-number");
    v.push_back(x.get<float>());
  }
  return torch::tensor(v);
}

}  // namespace

nlohmann::json LinearProbe::to_json() const {
  if (!fitted()) throw Error("LinearProbe::to_json before fit");
  return {{"mean", floats_of(mean_)},
          {"std", floats_of(std_)},
          {"weight", floats_of(w_)},
          {"bias", floats_of(b_)[0]}};
}

LinearProbe LinearProbe::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("linear probe: not a JSON object", "refit the router");
  LinearProbe p;
  p.w_ = tensor_of(j, "weight", 0);
  const size_t d = static_cast<size_t>(p.w_.numel());
  if (d == 0) throw Error("linear probe: empty weight", "refit the router");
  p.mean_ = tensor_of(j, "mean", d);
  p.std_ = tensor_of(j, "std", d);
  if (!(p.std_ > 0).all().item<bool>())
    throw Error("linear probe: a std is not positive", "refit the router");
  if (!j.contains("bias") || !j["bias"].is_number() || !std::isfinite(j["bias"].get<double>()))
    throw Error("linear probe: 'bias' is missing or not a number", "refit the router");
  p.b_ = torch::tensor(std::vector<float>{j["bias"].get<float>()});
  return p;
}

}  // namespace handoff
