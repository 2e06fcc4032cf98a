#pragma once
// Runs the device model on a batch of queries and reads what it said: a local answer, a hand-off or a format
// error (the one parser shared with the reward, src/protocol/response.h).
#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/sampler.h"
#include "protocol/response.h"
#include "tasks/task.h"

namespace handoff {

struct DeviceOutput {
  std::vector<int> prompt_tokens;
  std::vector<int> tokens;      // generated, including the final stop token (EOS or <handoff>) if any
  std::vector<float> logprobs;  // per generated token
  std::string text;             // decoded completion without EOS
  bool ended_with_eos = false;
  ParsedResponse parsed;
};

// Device decoding stops at EOS or at <handoff> (the marker ends the device's turn by the grammar).
// handoff_threshold ≤ 1: hand off exactly where P(<handoff>) reaches it, never elsewhere (the deployment knob
// of sampler.h; lower → more calls). Above 1: off, the model's own decoding decides.
SamplingOptions device_sampling(const Tokenizer& tok, double temperature, int64_t max_new_tokens,
                                double top_p = 1.0, double handoff_threshold = 1.1);

// Every problem's prompt encodes with `tok`; otherwise an Error naming the item (its file:line for a dataset)
// before any work starts, rather than the tokenizer's bare message halfway through.
void require_encodable(const Tokenizer& tok, const std::vector<Problem>& problems);

std::vector<DeviceOutput> run_device(CausalLM& model, const Tokenizer& tok,
                                     const std::vector<std::string>& queries, const SamplingOptions& opts,
                                     const std::vector<uint64_t>& seeds, int64_t max_batch = 256);
// What the device said, row by row, from a decode of `prompts` (the tokens, text and parse of each).
std::vector<DeviceOutput> read_device_outputs(const Tokenizer& tok, std::vector<std::vector<int>> prompts,
                                              Generation gen);
// Same, for prompts already encoded (e.g. a whole conversation through the chat template).
std::vector<DeviceOutput> run_device_prompts(CausalLM& model, const Tokenizer& tok,
                                             std::vector<std::vector<int>> prompts,
                                             const SamplingOptions& opts, const std::vector<uint64_t>& seeds,
                                             int64_t max_batch = 256);

}  // namespace handoff
