#include "tokenizer/chat_template.h"

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace handoff {

namespace {

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

// The default system message of a ChatML template: the text of a literal '<|im_start|>system\n...<|im_end|>'
// (Qwen2.5: inside `{{- '...' }}`; Qwen2: inside `{{ '...' }}` under `loop.first and ... != 'system'`).
// A system block built from the conversation ("' + messages[0]['content'] + '") is not a default and is
// skipped. "" when the template has no default.
std::string chatml_default_system(const std::string& t) {
  const std::string head = "<|im_start|>system";
  for (size_t at = t.find(head); at != std::string::npos; at = t.find(head, at + 1)) {
    size_t i = at + head.size();
    if (t.compare(i, 2, "\\n") == 0)
      i += 2;  // the newline written as an escape inside a Jinja string literal
    else if (i < t.size() && t[i] == '\n')
      i += 1;
    else
      continue;
    const size_t end = t.find("<|im_end|>", i);
    if (end == std::string::npos) continue;
    const std::string body = t.substr(i, end - i);
    if (body.find_first_of("'\"+{}") != std::string::npos) continue;  // built from variables, not a literal
    std::string text;
    for (size_t k = 0; k < body.size(); ++k) {
      if (body[k] == '\\' && k + 1 < body.size() && body[k + 1] == 'n') {
        text += '\n';
        ++k;
      } else {
        text += body[k];
      }
    }
    return text;
  }
  return "";
}

// Jinja's `trim` filter is Python's str.strip(): it removes the characters for which str.isspace() is true.
bool python_isspace(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

std::string jinja_trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    const auto c = utf8::next(s, begin);
    if (c.cp < 0 || !python_isspace(c.cp)) break;
    begin += c.len;
  }
  while (end > begin) {
    size_t k = end - 1;
    while (k > begin && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    const auto c = utf8::next(s, k);
    if (c.cp < 0 || k + c.len != end || !python_isspace(c.cp)) break;
    end = k;
  }
  return s.substr(begin, end - begin);
}

void check_roles(const std::vector<ChatMessage>& messages) {
  for (const auto& m : messages)
    if (m.role != "system" && m.role != "user" && m.role != "assistant")
      throw Error("chat message role '" + m.role + "' is not supported",
                  "use system, user or assistant; tool calls are not implemented");
}

std::string strip_newlines(const std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  while (left && b < e && s[b] == '\n') ++b;
  while (right && e > b && s[e - 1] == '\n') --e;
  return s.substr(b, e - b);
}

bool is_tool_response(const std::string& s) {
  const std::string open = "<tool_response>", close = "</tool_response>";
  return s.compare(0, open.size(), open) == 0 && s.size() >= close.size() &&
         s.compare(s.size() - close.size(), close.size(), close) == 0;
}

// Qwen3's `ns.last_query_index`: the last user message that is not a tool response (the last index if none).
size_t last_query_index(const std::vector<ChatMessage>& messages) {
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user" && !is_tool_response(messages[i].content)) return i;
  return messages.empty() ? 0 : messages.size() - 1;
}

// A Qwen3 assistant turn without its <|im_end|>: the content after the last "</think>", the reasoning
// between the last "<think>" and the first "</think>" (Python's split, as the template does), the reasoning
// kept only after the last query and only when it is the last turn or has any.
std::string qwen3_assistant(const std::string& text, bool after_last_query, bool last) {
  std::string content = text, reasoning;
  const size_t close = text.find("</think>");
  if (close != std::string::npos) {
    content = strip_newlines(text.substr(text.rfind("</think>") + 8), true, false);
    const std::string before = strip_newlines(text.substr(0, close), false, true);
    const size_t open = before.rfind("<think>");
    reasoning = strip_newlines(open == std::string::npos ? before : before.substr(open + 7), true, false);
  }
  if (after_last_query && (last || !reasoning.empty()))
    return "<|im_start|>assistant\n<think>\n" + strip_newlines(reasoning, true, true) + "\n</think>\n\n" +
           strip_newlines(content, true, false);
  return "<|im_start|>assistant\n" + content;
}

std::string render_chatml(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string out;
  size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
    first = 1;
  } else if (!t.default_system.empty()) {
    out += "<|im_start|>system\n" + t.default_system + "<|im_end|>\n";
  }
  const size_t query = last_query_index(messages);
  for (size_t i = first; i < messages.size(); ++i) {
    if (t.reasoning && messages[i].role == "assistant")
      out += qwen3_assistant(messages[i].content, i > query, i + 1 == messages.size()) + "<|im_end|>\n";
    else
      out += "<|im_start|>" + messages[i].role + "\n" + messages[i].content + "<|im_end|>\n";
  }
  return out;
}

std::string render_llama3(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  std::string out;
  size_t first = 0;
  if (t.llama3_date_block) {
    std::string system;
    if (!messages.empty() && messages[0].role == "system") {
      system = jinja_trim(messages[0].content);
      first = 1;
    }
    out += t.bos_token + "<|start_header_id|>system<|end_header_id|>\n\n";
    out += "Cutting Knowledge Date: December 2023\nToday Date: " + t.date_string + "\n\n";
    out += system + "<|eot_id|>";
  } else if (!messages.empty()) {
    out += t.bos_token;  // Llama-3.0 puts bos_token before the first message only
  }
  for (size_t i = first; i < messages.size(); ++i)
    out += "<|start_header_id|>" + messages[i].role + "<|end_header_id|>\n\n" +
           jinja_trim(messages[i].content) + "<|eot_id|>";
  return out;
}

// Llama-2 chat, as its Jinja template: a leading system message is folded into the first user turn inside
// <<SYS>> ... <</SYS>>; each user turn is "<s>[INST] {content} [/INST]", each assistant turn
// " {content} </s>", contents stripped (the system message itself is not). The template checks only that the
// i-th message is a user turn exactly when i is even, so a system message at an odd position passes and
// prints nothing; we keep that quirk so prompts equal what transformers renders.
std::string render_llama2(const ChatTemplate& t, const std::vector<ChatMessage>& messages) {
  if (messages.empty())
    throw Error("a Llama-2 chat needs at least one message", "the template reads messages[0]");
  size_t first = 0;
  const std::string* system = nullptr;
  if (messages[0].role == "system") {
    system = &messages[0].content;
    first = 1;
  }
  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const size_t index = i - first;
    if ((m.role == "user") != (index % 2 == 0))
      throw Error("Llama-2 chat: conversation roles must alternate user/assistant/user/assistant/...",
                  "message " + std::to_string(i) + " is '" + m.role + "'");
    std::string content = m.content;
    if (index == 0 && system) content = "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + content;
    if (m.role == "user")
      out += t.bos_token + "[INST] " + jinja_trim(content) + " [/INST]";
    else if (m.role == "assistant")
      out += " " + jinja_trim(content) + " " + t.eos_token;
  }
  return out;
}

}  // namespace

ChatTemplate ChatTemplate::llama2(const std::string& bos_token, const std::string& eos_token) {
  ChatTemplate t;
  t.kind = Kind::kLlama2;
  t.bos_token = bos_token;
  t.eos_token = eos_token;
  return t;
}

ChatTemplate ChatTemplate::parse(const std::string& text, const std::string& bos_token,
                                 const std::string& source, const std::string& eos_token) {
  ChatTemplate t;
  t.bos_token = bos_token;
  t.eos_token = eos_token;
  if (contains(text, "<|im_start|>")) {
    if (contains(text, "<think>")) {
      // Qwen3's template is recognised by its own markers; other reasoning templates (QwQ, R1 distills)
      // handle <think> differently and are refused rather than rendered as Qwen3.
      // Qwen3-*-Thinking-2507 opens every generation with "<think>\n" (its template shares Qwen3's markers):
      // not implemented either, so refused.
      if (contains(text, "<|im_start|>assistant\\n<think>") ||
          contains(text, "<|im_start|>assistant\n<think>"))
        throw Error(source +
                        ": this ChatML template opens every reply with <think> (a thinking-only model), "
                        "which is not implemented",
                    "supported: Qwen2 / Qwen2.5 / Qwen3 (hybrid thinking) ChatML and Llama-3 templates");
      if (!contains(text, "last_query_index") || !contains(text, "reasoning_content"))
        throw Error(source +
                        ": this ChatML chat template has reasoning (<think>) blocks other than Qwen3's, "
                        "which are not implemented",
                    "supported: Qwen2 / Qwen2.5 / Qwen3 ChatML and Llama-3 templates");
      t.reasoning = true;
    }
    t.kind = Kind::kChatML;
    t.default_system = chatml_default_system(text);
    return t;
  }
  if (contains(text, "<|start_header_id|>")) {
    t.kind = Kind::kLlama3;
    t.llama3_date_block = contains(text, "Cutting Knowledge Date");
    if (bos_token.empty() && contains(text, "bos_token"))
      throw Error(source + ": the Llama-3 chat template uses bos_token, but none is defined",
                  "set \"bos_token\" in tokenizer_config.json");
    return t;
  }
  // Llama-2 chat: Mistral's [INST] templates have no <<SYS>> block and differ in spacing, so they are
  // refused.
  if (contains(text, "<<SYS>>") && contains(text, "'[INST] '") && contains(text, "' [/INST]'") &&
      contains(text, "content.strip()")) {
    if (bos_token.empty() || eos_token.empty())
      throw Error(source + ": the Llama-2 chat template uses bos_token and eos_token, but one is not defined",
                  "set \"bos_token\" and \"eos_token\" in tokenizer_config.json");
    return llama2(bos_token, eos_token);
  }
  throw Error(source + ": chat template not recognised (neither ChatML, Llama-3 nor Llama-2)",
              "supported: Qwen2 / Qwen2.5 ChatML, Llama-3 and Llama-2 chat templates; template begins: " +
                  text.substr(0, 80));
}

std::string render_chat(const ChatTemplate& t, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt) {
  check_roles(messages);
  if (t.kind == ChatTemplate::Kind::kChatML) {
    std::string out = render_chatml(t, messages);
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    if (add_generation_prompt && t.reasoning && !t.enable_thinking) out += "<think>\n\n</think>\n\n";
    return out;
  }
  if (t.kind == ChatTemplate::Kind::kLlama2) return render_llama2(t, messages);
  std::string out = render_llama3(t, messages);
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

}  // namespace handoff
