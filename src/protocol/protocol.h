#pragma once
// What the device and the cloud are told, and how the device's reply is read: issue 17's "protocols as data"
// (design.md, src/protocol/). A protocol names the device's system and user texts, the cloud's, the form of
// the device's final answer, its hand-off marker, and whether the format check of the reward (paper §3.2)
// asks for the reasoning inside <think>…</think>.
//
// Built in: "handoff", the embedded default (the bare query; `… Answer: X`; the <handoff> token; the cloud
// gets the bare query) — every recorded result used it, and it renders and parses exactly as before
// protocols existed; and "paper", the paper's (§4 of arXiv 2509.24050: an Instruct device told to reason in
// <think>, answer in <answer>, and write `<unknown> I need external assistance </unknown>` when it needs
// help; the cloud asked to put its final answer in \boxed{}). A user's own is a JSON file of the same fields
// (`handoff protocol show paper` prints one to start from).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/chat_message.h"
#include "protocol/response.h"

namespace handoff {

// How the device marks its final answer.
enum class AnswerForm {
  kAnswerLine,  // "Answer: X" on the last line (the embedded default)
  kAnswerTags,  // "<answer>X</answer>"
  kBoxed,       // "\boxed{X}"
  kHashes,      // "#### X" (GSM8K's solutions)
};
std::string answer_form_name(AnswerForm f);  // "answer-line" | "answer-tags" | "boxed" | "hashes"

struct Protocol {
  std::string name = "handoff";
  // The device's conversation: an optional system message, then the user message (`{query}` is replaced
  // by the task's question; it must appear exactly once).
  std::string device_system;
  std::string device_user = "{query}";
  AnswerForm answer = AnswerForm::kAnswerLine;
  // What the device writes last to call the cloud: the special token "<handoff>" or a phrase (the paper's
  // "<unknown> I need external assistance </unknown>"). Either marker, and this one, is read as a call.
  std::string handoff = std::string(kHandoffMarker);
  bool think = false;  // the format check asks for "<think>reasoning</think>" before the answer
  // For chat templates with a thinking switch (Qwen3): false renders the empty think block. Unset: the
  // template's default (thinking on). Templates without the switch ignore it.
  std::optional<bool> enable_thinking;
  // The cloud's conversation, same rules as the device's.
  std::string cloud_system;
  std::string cloud_user = "{query}";

  std::vector<ChatMessage> device_messages(const std::string& query) const;
  std::vector<ChatMessage> cloud_messages(const std::string& query) const;
  // A whole conversation (the collaborative endpoint's): the last user message is the query, rendered
  // through the user text; the system text goes first unless the conversation brings its own.
  std::vector<ChatMessage> device_conversation(std::vector<ChatMessage> conversation) const;
  std::vector<ChatMessage> cloud_conversation(std::vector<ChatMessage> conversation) const;

  // The device's reply read by this protocol's grammar (the reward's format column included). For the
  // embedded default this is exactly parse_response(). Total: any text gives a result.
  ParsedResponse parse(std::string_view reply, bool ended_with_eos) const;
  // SFT targets in this protocol's format, from a task's worked solution split into its reasoning and
  // answer; for the default, solution_text(reasoning, answer) == the task's own "reasoning + Answer: X".
  std::string solution_text(const std::string& reasoning, const std::string& answer) const;
  std::string handoff_text(const std::string& reasoning) const;

  bool handoff_is_token() const { return handoff == kHandoffMarker; }
  // "" when the cloud is sent the bare query (the default: cache lines written before protocols keep
  // counting); otherwise a digest of the cloud's texts, which the cloud answer cache keys on.
  std::string cloud_key() const;

  std::string to_json_text() const;  // every field, pretty-printed
  // Unknown or missing fields, a user text without exactly one {query}, an unknown answer form → Error
  // naming `source` and the field.
  static Protocol from_json_text(const std::string& text, const std::string& source);
};

std::vector<std::string> builtin_protocol_names();  // {"handoff", "paper"}
// A built-in NAME, or the path of a protocol JSON file; errors name what was asked for.
Protocol load_protocol(const std::string& name_or_path);
// The protocol a checkpoint or run directory records (DIR/protocol.json); the default when it has none.
Protocol recorded_protocol(const std::string& dir);
// `flag` (a name or path) when given, else what DIR records, else the default.
Protocol resolve_protocol(const std::string& flag, const std::string& dir);
inline constexpr const char* kProtocolFile = "protocol.json";

}  // namespace handoff
