#pragma once
// SentencePiece tokenizers of real checkpoints (Llama-2, Mistral, TinyLlama): DIR/tokenizer.model, run by
// Debian's libsentencepiece (through SentencePieceModel), as transformers' slow LlamaTokenizer does.
//
// encode(text), as LlamaTokenizer(legacy=True).encode(text, add_special_tokens=False):
//   1. literal occurrences of the added tokens (tokenizer_config.json "added_tokens_decoder", e.g. <handoff>)
//      and of the model's control and unknown pieces ("<s>", "</s>", "<unk>") are cut out of the text,
//      longest first, each becoming its one id;
//   2. every piece of text between them is encoded by SentencePiece on its own, so each gets the model's
//      dummy-prefix "▁" (legacy=True, the behaviour of Meta's reference code, which encodes each chat turn
//      separately). transformers' legacy=False instead adds "▁" only at the start of the whole text; we do
//      not implement that mode, whatever tokenizer_config.json says.
// decode(ids) turns each run of ordinary pieces back into text with SentencePiece (byte-fallback pieces
// become their bytes) and writes added tokens, control and unknown pieces as their text ("<s>"), or drops the
// special ones with skip_special; ids outside the vocabulary are skipped.
//
// A checkpoint saved with this tokenizer has no tokenizer.json: tokenizer.model and tokenizer_config.json
// (with the added tokens in "added_tokens_decoder") are what transformers' LlamaTokenizer loads, and what
// load_tokenizer recognises.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/sentencepiece_library.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // DIR/tokenizer.model, plus DIR/tokenizer_config.json (added tokens, bos/eos names, chat template) and the
  // "added_tokens" of DIR/tokenizer.json (a transformers conversion of the same model, where `handoff
  // add-token` also records the token) when present. Throws Error naming the file.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& dir);

  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override { return vocab_size_; }
  // No pad piece (Llama-2): eos, as BpeTokenizer does; padded positions are masked anyway.
  int pad_id() const override { return pad_id_; }
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int handoff_id() const override { return handoff_id_; }
  std::string to_json() const override { return ""; }  // saved through extra_files()
  std::map<std::string, std::string> extra_files() const override;
  // The checkpoint's chat template, Llama-2 chat when it has none (transformers' former default for
  // LlamaTokenizer).
  std::vector<int> encode_chat(const std::vector<ChatMessage>& messages) const override;

  int piece_count() const { return sp_->piece_size(); }  // the SentencePiece model's own pieces
  int token_to_id(const std::string& token) const;       // added token or piece; -1 if absent
  const ChatTemplate& chat_template() const { return chat_template_; }
  void set_enable_thinking(bool on) override { chat_template_.enable_thinking = on; }

 private:
  // Text matched literally in encode(): an added token, or a control/unknown piece of the model.
  struct LiteralToken {
    std::string content;
    int id = -1;
    bool special = true;
  };

  SentencePieceTokenizer() = default;
  void add_token(const std::string& content, int id, bool special, const std::string& source);
  const LiteralToken* literal_of_id(int id) const;
  void encode_text(std::string_view text, std::vector<int>& ids) const;  // no literal tokens inside

  std::unique_ptr<SentencePieceModel> sp_;
  std::string model_bytes_;             // tokenizer.model, written again by extra_files()
  std::string config_text_;             // tokenizer_config.json as read ("" when absent)
  std::string template_text_;           // from chat_template.jinja, kept in the saved tokenizer_config.json
  std::vector<LiteralToken> literals_;  // longest first
  std::map<int, size_t> literal_index_of_id_;
  int vocab_size_ = 0, pad_id_ = -1, bos_id_ = -1, eos_id_ = -1, handoff_id_ = -1;
  ChatTemplate chat_template_;
};

}  // namespace handoff
