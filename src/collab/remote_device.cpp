#include "collab/remote_device.h"

#include <algorithm>

#include "protocol/response.h"

namespace handoff {

std::string cut_at_handoff(const std::string& text, const Protocol& protocol, bool& ended) {
  size_t end = std::string::npos;
  for (const std::string& marker : {protocol.handoff, std::string(kHandoffMarker)}) {
    const size_t at = text.find(marker);
    if (at != std::string::npos) end = std::min(end, at + marker.size());
  }
  ended = end != std::string::npos;
  return ended ? text.substr(0, end) : text;
}

RemoteDeviceReply ask_remote_device(const CloudClient& device, const Protocol& protocol,
                                    const std::vector<ChatMessage>& query, double temperature, double top_p,
                                    int64_t max_tokens, uint64_t seed, int banned_token) {
  ChatOptions o;
  o.temperature = temperature;
  o.top_p = top_p;
  o.max_tokens = max_tokens;
  o.seed = seed;
  if (banned_token >= 0) o.logit_bias = {{banned_token, -100.0}};
  ChatResult r;
  try {
    r = device.chat_streamed(protocol.device_conversation(query), o,
                             {protocol.handoff, std::string(kHandoffMarker)});
  } catch (const Error& e) {
    throw DeviceUnavailable("the device server at " + device.options().base_url + " failed: " + e.what(),
                            "check --device-url and --device-model");
  }
  RemoteDeviceReply out;
  bool marker = false;
  out.text = cut_at_handoff(r.content, protocol, marker);
  out.ended = marker || r.finish_reason == "stop";
  out.prompt_tokens = r.usage.prompt_tokens;
  out.tokens = r.usage.completion_tokens;
  out.ms = r.latency_ms;
  return out;
}

int remote_handoff_token(const CloudClient& device) {
  const std::string hint =
      "give the id with --device-handoff-token-id (e.g. from the GGUF's vocabulary), or drop --fallback";
  std::vector<int> ids;
  try {
    ids = device.tokenize(std::string(kHandoffMarker));
  } catch (const Error& e) {
    throw Error("--fallback needs the id of the device's " + std::string(kHandoffMarker) +
                    " token, and the device server could not say: " + e.what(),
                hint);
  }
  if (ids.size() != 1) {
    std::string list;
    for (int id : ids) list += (list.empty() ? "" : ", ") + std::to_string(id);
    throw Error("the device server reads " + std::string(kHandoffMarker) + " as " +
                    std::to_string(ids.size()) + " tokens [" + list +
                    "], not one: is it serving a model exported with its hand-off token?",
                hint);
  }
  return ids.front();
}

}  // namespace handoff
