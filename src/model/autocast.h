#pragma once
// Scoped bf16 autocast for the model's device type (`--precision bf16`, CausalLMImpl::autocast_bf16). Every
// path that runs the network under it — CausalLM::forward (sampling, evaluation, serving) and
// completion_logprobs (SFT and RL losses) — opens one of these, so training and inference see the same
// precision. Autocast state is thread-local: the scope covers exactly the code that opened it.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

namespace handoff {

class Bf16Autocast {
 public:
  explicit Bf16Autocast(const c10::Device& d);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool cuda_;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::kBFloat16;
};

}  // namespace handoff
