#pragma once
// One tokenizer interface for the embedded character tokenizer, the byte-level BPE of real checkpoints
// (Qwen2, Llama-3) and SentencePiece models (Llama-2, Mistral).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "protocol/chat_message.h"

namespace handoff {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Special tokens written literally in `text` (e.g. "<handoff>") become their ids.
  virtual std::vector<int> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int>& ids, bool skip_special = false) const = 0;
  virtual int vocab_size() const = 0;
  virtual int pad_id() const = 0;
  virtual int bos_id() const = 0;  // -1 when the vocabulary has none (Qwen2)
  virtual int eos_id() const = 0;
  virtual int handoff_id() const = 0;
  // Ids that end a reply: EOS, plus what a chat model ends its turn with (the chat template's end-of-turn
  // token, generation_config.json's eos_token_id list) — Llama-3's <|eot_id|> is not its EOS.
  virtual std::vector<int> stop_ids() const { return {eos_id()}; }
  // Text of an HF-compatible tokenizer.json; "" when the tokenizer is saved through extra_files() alone.
  virtual std::string to_json() const = 0;
  // Other files a checkpoint needs to load this tokenizer again (name -> bytes), written next to
  // tokenizer.json by save_checkpoint: a SentencePiece checkpoint's tokenizer.model and
  // tokenizer_config.json.
  virtual std::map<std::string, std::string> extra_files() const { return {}; }
  // Model input for a conversation, ending where the assistant's reply begins (the chat template).
  virtual std::vector<int> encode_chat(const std::vector<ChatMessage>& messages) const = 0;
  // The chat template's thinking switch (Qwen3's enable_thinking), set once before the tokenizer is shared;
  // templates without one ignore it.
  virtual void set_enable_thinking(bool /*on*/) {}
  // Same, for a single user query: the form every task prompt takes.
  std::vector<int> encode_query(const std::string& query) const { return encode_chat({{"user", query}}); }
};

// Reads DIR/tokenizer.json (or DIR/tokenizer.model) and returns the matching implementation; throws Error
// naming the file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace handoff
