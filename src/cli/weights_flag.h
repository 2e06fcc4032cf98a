#pragma once
// `--weights fp32|bf16|int8` for the inference commands (serve, ask, eval): how a loaded model's linear
// weights are stored while it answers (CausalLMImpl::store_weights_bf16/int8). Training commands do not take
// it.
#include <CLI/CLI.hpp>
#include <string>

#include "io/checkpoint.h"

namespace handoff {

void add_weights_flag(CLI::App* cmd, std::string& weights);
// Throws Error for an unknown name, or bf16/int8 for a model not on the CPU (the kernels are CPU ones).
void apply_weights(LoadedModel& m, const std::string& weights);

}  // namespace handoff
