#pragma once
// Frozen features for routers: the mean of the device model's final hidden states over a text's tokens.
#include <string>
#include <vector>

#include <ATen/Tensor.h>

#include "collab/device_run.h"
#include "model/decoder.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

// One row per input: prompts (as the device reads them) optionally followed by a completion text
// (the post-inference router reads the device's answer too). Returns [N, hidden_size].
at::Tensor pooled_features(CausalLM& model, const DeviceSpeech& io, const std::vector<std::string>& queries,
                           const std::vector<std::string>& completions = {}, int64_t batch = 256);

}  // namespace handoff
