#pragma once
// One message of a chat conversation: what protocols render (protocol.h) and chat templates encode.
#include <string>

namespace handoff {

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

}  // namespace handoff
