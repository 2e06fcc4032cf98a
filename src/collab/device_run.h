#pragma once
// Runs the device model on a batch of queries and reads what it said: a local answer, a hand-off or a format
// error (the one parser shared with the reward, src/protocol/response.h).
#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/sampler.h"
#include "protocol/protocol.h"
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
  // Decoded with the hand-off threshold on: the highest P(<handoff>) the device gave on its way to this
  // reply (Generation::boost_peak); −1 when the threshold was off.
  float handoff_score = -1;
};

// How the device is spoken to and read: its tokenizer and the protocol (protocol.h) of its prompts and
// replies.
struct DeviceSpeech {
  const Tokenizer& tok;
  const Protocol& protocol;
  // A task's question as the device's model input: the protocol's conversation through the chat template.
  std::vector<int> encode_query(const std::string& query) const {
    return tok.encode_chat(protocol.device_messages(query));
  }
};

// Device decoding stops at EOS, the end of a chat turn, or <handoff> (the marker ends the device's turn).
// handoff_threshold ≤ 1: hand off exactly where P(<handoff>) reaches it, never elsewhere (the deployment knob
// of sampler.h; lower → more calls); it needs a protocol whose hand-off is the <handoff> token (Error
// otherwise). Above 1: off, the model's own decoding decides.
SamplingOptions device_sampling(const DeviceSpeech& io, double temperature, int64_t max_new_tokens,
                                double top_p = 1.0, double handoff_threshold = 1.1);

// The id of the device's <handoff> token; an Error naming `feature` (e.g. "the hand-off threshold") when the
// protocol hands off with a phrase or the tokenizer has no such token.
int handoff_token_id(const DeviceSpeech& io, const std::string& feature);

// Every problem's prompt encodes; otherwise an Error naming the item (its file:line for a dataset) before
// any work starts, rather than the tokenizer's bare message halfway through.
void require_encodable(const DeviceSpeech& io, const std::vector<Problem>& problems);
// The protocol's grammar reads every problem's own answer back from the form it asks the device for (a
// GSM8K #### line cannot hold an answer with a newline, nor <answer> tags one with "</answer>"); otherwise
// an Error naming the first item it cannot read, before any work starts — never a silently wrong reward.
void require_readable(const DeviceSpeech& io, const Task& task, const std::vector<Problem>& problems);

std::vector<DeviceOutput> run_device(CausalLM& model, const DeviceSpeech& io,
                                     const std::vector<std::string>& queries, const SamplingOptions& opts,
                                     const std::vector<uint64_t>& seeds, int64_t max_batch = 256);
// What the device said, row by row, from a decode of `prompts` (the tokens, text and parse of each).
std::vector<DeviceOutput> read_device_outputs(const DeviceSpeech& io, std::vector<std::vector<int>> prompts,
                                              Generation gen);
// Same, for prompts already encoded (e.g. a whole conversation through the chat template).
std::vector<DeviceOutput> run_device_prompts(CausalLM& model, const DeviceSpeech& io,
                                             std::vector<std::vector<int>> prompts,
                                             const SamplingOptions& opts, const std::vector<uint64_t>& seeds,
                                             int64_t max_batch = 256);

}  // namespace handoff
