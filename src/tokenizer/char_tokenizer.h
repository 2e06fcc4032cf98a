#pragma once
// Character tokenizer of the embedded default: 4 special tokens, '\n', and printable ASCII.
// A fixed alphabet means every task and every checkpoint of the embedded default shares one vocabulary.
#include <array>

#include "protocol/response.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

class CharTokenizer : public Tokenizer {
 public:
  static constexpr int kPad = 0, kBos = 1, kEos = 2, kHandoff = 3;
  // kHandoffMarker views a string literal, so its data() is NUL-terminated like the others.
  static constexpr const char* kSpecials[4] = {"<pad>", "<bos>", "<eos>", kHandoffMarker.data()};

  CharTokenizer();
  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override { return 100; }
  int pad_id() const override { return kPad; }
  int bos_id() const override { return kBos; }
  int eos_id() const override { return kEos; }
  int handoff_id() const override { return kHandoff; }
  std::string to_json() const override;
  // Template: <bos> + the user messages joined by '\n' + '\n'; the reply follows.
  std::vector<int> encode_chat(const std::vector<ChatMessage>& messages) const override;
  // encode_chat's template as Jinja (what a GGUF export carries, so llama-server --jinja prompts a char
  // model as handoff does; tests/test_chat_template.cpp checks it against python3-jinja2).
  static constexpr const char* kJinjaTemplate =
      R"J({{ bos_token }}{% set ns = namespace(text='') %}{% for m in messages %}{% if m['role'] == 'user' %})J"
      R"J({% if ns.text %}{% set ns.text = ns.text + '\n' %}{% endif %}{% set ns.text = ns.text + m['content'] %})J"
      R"J({% endif %}{% endfor %}{{ ns.text + '\n' }})J";

  // Parses our own tokenizer.json (throws Error if it is not a char tokenizer with this alphabet).
  static CharTokenizer from_json(const std::string& json_text, const std::string& source);
  bool can_encode(const std::string& text) const;

 private:
  std::array<int, 256> char_to_id_;
  std::string id_to_char_;  // index = id - 4
};

}  // namespace handoff
