#pragma once
// The device model behind any OpenAI-compatible server (issue 20, `--device-url`): llama.cpp's llama-server
// on a GGUF from `handoff export-gguf`, vLLM, or `handoff serve --model`. It is asked through the chat API
// with the protocol's device conversation (the server applies the model's own chat template) and its reply
// text is read by the protocol's grammar — the hand-off is the marker in the text, where llama.cpp renders
// the exported <handoff> token (a user-defined token) and `handoff serve` ends the reply with it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cloud/cloud_client.h"
#include "common/error.h"
#include "protocol/protocol.h"

namespace handoff {

struct RemoteDeviceReply {
  std::string text;    // the reply up to and including the hand-off marker (what follows one is dropped)
  bool ended = false;  // the turn ended (finish_reason "stop", or a hand-off marker)
  int64_t prompt_tokens = 0, tokens = 0;  // as the server's usage reports them
  double ms = 0;
};

// The error for a device server that is down, slow, or answers garbage (→ HTTP 502 device_unavailable).
struct DeviceUnavailable : Error {
  using Error::Error;
};

// Asks the device server for one reply to `query` (the user's conversation): temperature, top_p, max_tokens
// and the seed as given; `banned_token` ≥ 0 is sent as a logit_bias of -100 (the fallback's "answer, do not
// hand off"): OpenAI's ban; llama-server adds -100 to the logit, which no trained logit comes back from
// (its hard ban, `false`, is not OpenAI's API; docs/results/2026-12-04-llama-server-device checks it). The
// reply is streamed and the connection closed once the server goes on past a hand-off marker (llama-server
// does not stop at <handoff>; CloudClient::chat_streamed). Throws DeviceUnavailable naming the server when it
// cannot answer.
RemoteDeviceReply ask_remote_device(const CloudClient& device, const Protocol& protocol,
                                    const std::vector<ChatMessage>& query, double temperature, double top_p,
                                    int64_t max_tokens, uint64_t seed, int banned_token = -1);

// The hand-off token's id on the device server (its /tokenize, as llama-server and `handoff serve --model`
// offer it). Throws Error when the server cannot say, or reads the marker as more than one token.
int remote_handoff_token(const CloudClient& device);

// The reply cut just after the first hand-off marker (the protocol's, or the <handoff> token's text) when
// there is one; `ended` says whether one was found.
std::string cut_at_handoff(const std::string& text, const Protocol& protocol, bool& ended);

}  // namespace handoff
