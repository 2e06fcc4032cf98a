#include "collab/remote_device.h"

#include <algorithm>

#include "protocol/response.h"

namespace handoff {

std::string cut_at_handoff(const std::string& text, const Protocol& protocol, bool& ended) {
  size_t end = std::string::npos;
  for (const std::string marker : {protocol.handoff, std::string(kHandoffMarker)}) {
    const size_t at = text.find(marker);
    if (at != std::string::npos) end = std::min(end, at + marker.size());
  }
  ended = end != std::string::npos;
  return ended ? text.substr(0, end) : text;
}

RemoteDeviceReply ask_remote_device(const CloudClient& device, const Protocol& protocol,
                                    const std::vector<ChatMessage>& query, double temperature, double top_p,
                                    int64_t max_tokens, uint64_t seed) {
  ChatOptions o;
  o.temperature = temperature;
  o.top_p = top_p;
  o.max_tokens = max_tokens;
  o.seed = seed;
  ChatResult r;
  try {
    r = device.chat(protocol.device_conversation(query), o);
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

}  // namespace handoff
