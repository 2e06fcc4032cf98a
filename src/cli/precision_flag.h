#pragma once
// `--precision fp32|bf16` for the commands that run a model (sft, train, eval, serve, ask): bf16 runs every
// forward under bf16 autocast (see CausalLMImpl::autocast_bf16); weights, optimizer state and logits stay
// fp32.
#include <CLI/CLI.hpp>
#include <string>

namespace handoff {

void add_precision_flag(CLI::App* cmd, std::string& precision);
// Sets the process-wide default before any model is built; throws Error for an unknown name.
void apply_precision(const std::string& precision);

}  // namespace handoff
