#pragma once
// Chat templates of real checkpoints, rendered natively instead of by a Jinja engine: ChatML (Qwen2,
// Qwen2.5, and Qwen3 with its <think> blocks), Llama-3 (3.0, and 3.1/3.2 with the "Cutting Knowledge Date"
// system block) and Llama-2 chat
// ([INST], <<SYS>>). The template string from tokenizer_config.json only selects one of these and supplies
// its data (the default system message); tests/test_chat_template.cpp renders the real template strings with
// Jinja and compares.
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace handoff {

struct ChatTemplate {
  enum class Kind { kChatML, kLlama3, kLlama2 };
  Kind kind = Kind::kChatML;
  // ChatML: the system message the template inserts when the conversation has none ("" = no system block).
  // Qwen2.5: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."; Qwen2: "You are a
  // helpful assistant." Taken from the template string itself.
  std::string default_system;
  // Qwen3's ChatML: an assistant turn's "<think>…</think>" reasoning is dropped before the last user query
  // and kept (re-wrapped) after it; with enable_thinking false the generation prompt carries an empty think
  // block, which tells the model to answer without reasoning. enable_thinking true is HF's default.
  bool reasoning = false;
  bool enable_thinking = true;
  // Llama-3.1 / 3.2: a system block always opens the prompt, with "Cutting Knowledge Date: December 2023" and
  // "Today Date: <date>". Llama-3.0: no such block; bos_token precedes the first message.
  bool llama3_date_block = false;
  // The date the Llama-3.1/3.2 templates print. HF transformers passes today's date (strftime_now); we use
  // the template's own fallback so prompts, and therefore trained policies, do not change from day to day.
  std::string date_string = "26 Jul 2024";
  std::string bos_token;  // Llama-3: "<|begin_of_text|>"; Llama-2: "<s>"
  std::string eos_token;  // Llama-2: "</s>", closing each assistant turn

  // Recognises `template_text` (the Jinja source, as in tokenizer_config.json's "chat_template"); throws
  // Error naming `source` for a template we do not implement, rather than rendering something else.
  static ChatTemplate parse(const std::string& template_text, const std::string& bos_token,
                            const std::string& source, const std::string& eos_token = "");
  // Llama-2 chat, the template of Llama-2-*-chat-hf and what transformers' LlamaTokenizer rendered when a
  // checkpoint had no template of its own (its former default_chat_template).
  static ChatTemplate llama2(const std::string& bos_token, const std::string& eos_token);
};

// The conversation rendered as the template does with add_generation_prompt=True (when
// `add_generation_prompt`): the text ends where the assistant's reply begins. Roles: "system", "user",
// "assistant"; anything else throws. Llama-2 has no generation prompt (a user turn already ends with
// " [/INST]") and, as its template, throws unless user and assistant turns alternate, starting with user.
std::string render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt = true);

}  // namespace handoff
