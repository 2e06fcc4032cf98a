#pragma once
// Byte-level BPE of real checkpoints (Qwen2, Llama-3, GPT-2 style), loaded from an HF tokenizer.json.
//
// encode(text), as HF `tokenizer.encode(text, add_special_tokens=False)`:
//   1. added tokens (special or not) are cut out of the text, longest match first;
//   2. the rest is normalized (none, or NFC) and split by the pre-tokenizer regex (Split / ByteLevel);
//   3. each piece's bytes become GPT-2's byte symbols and are merged by merge rank (lowest first, leftmost
//      first among equals), with a per-piece cache.
// The post-processor is not applied: callers add <|begin_of_text|> etc. through the chat template.
// decode() maps byte symbols back to bytes (as HF's ByteLevel decoder) and returns valid UTF-8 (invalid
// sequences become U+FFFD, as HF's from_utf8_lossy); ids outside the vocabulary are skipped, as in HF.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tokenizer/chat_template.h"
#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

class BpeTokenizer : public Tokenizer {
 public:
  // DIR/tokenizer.json, plus DIR/tokenizer_config.json (special tokens, chat template) when present.
  static std::unique_ptr<BpeTokenizer> load(const std::string& dir);
  // The same from texts; `config_json` may be empty. `source` names the files in errors.
  static std::unique_ptr<BpeTokenizer> from_json(const std::string& tokenizer_json, const std::string& source,
                                                 const std::string& config_json = "",
                                                 const std::string& config_source = "tokenizer_config.json");

  std::vector<int> encode(const std::string& text) const override;
  std::string decode(const std::vector<int>& ids, bool skip_special = false) const override;
  int vocab_size() const override { return static_cast<int>(id_to_token_.size()); }
  int pad_id() const override { return pad_id_; }
  int bos_id() const override { return bos_id_; }
  int eos_id() const override { return eos_id_; }
  int handoff_id() const override { return handoff_id_; }
  std::vector<int> stop_ids() const override;
  std::string to_json() const override { return json_text_; }
  // tokenizer_config.json travels with every checkpoint saved from this one (RL, SFT), so the chat template
  // and special-token names survive training.
  std::map<std::string, std::string> extra_files() const override;
  // generation_config.json's eos_token_id (a number or a list): more ids that end a reply (stop_ids()).
  // Throws Error naming `source` on bad JSON or an id outside the vocabulary. load() reads it from DIR.
  void read_generation_config(const std::string& text, const std::string& source);
  // The checkpoint's chat template (ChatML or Llama-3) with add_generation_prompt; throws Error if the
  // checkpoint has none.
  std::vector<int> encode_chat(const std::vector<ChatMessage>& messages) const override;

  int token_to_id(const std::string& token) const;  // vocabulary or added token; -1 if absent
  const std::string& id_to_token(int id) const;     // "" if unknown
  const std::optional<ChatTemplate>& chat_template() const { return chat_template_; }
  void set_enable_thinking(bool on) override {
    if (chat_template_) chat_template_->enable_thinking = on;
  }

 private:
  struct AddedToken {
    std::string content;
    int id = -1;
    bool special = false, lstrip = false, rstrip = false, normalized = false, single_word = false;
  };
  // A piece of input text: either an added token (id >= 0) or text still to tokenize.
  struct Segment {
    std::string_view text;
    int added_id = -1;
  };
  struct MergeTarget {
    int rank;
    int id;
  };

  BpeTokenizer() = default;
  void parse_model(const nlohmann::json& model, const std::string& source);
  void parse_pre_tokenizer(const nlohmann::json& pre, const std::string& source);
  void parse_config(const std::string& config_json, const std::string& config_source);

  void split_added(std::string_view text, bool normalized_pass, std::vector<Segment>& out) const;
  void encode_text(std::string_view text, std::vector<int>& ids) const;  // no added tokens inside
  void encode_piece(std::string_view piece, std::vector<int>& ids) const;
  std::vector<int> merge_piece(std::string_view piece) const;
  int special_id(const std::string& content) const;
  int special_added_id(const std::string& content) const;  // an added token marked special; -1 otherwise

  std::string json_text_;
  std::string config_text_;                     // tokenizer_config.json as loaded ("" when there was none)
  std::string generation_config_text_;          // generation_config.json as loaded ("" when there was none)
  std::vector<int> generation_stop_ids_;        // its eos_token_id
  std::unordered_map<std::string, int> vocab_;  // token (byte symbols, UTF-8) -> id, including added tokens
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, MergeTarget> merges_;  // (left id << 32 | right id) -> rank, merged id
  std::array<int, 256> byte_id_{};                    // id of each byte's single symbol, -1 if not in vocab
  int unk_id_ = -1;
  bool ignore_merges_ = false;

  std::vector<AddedToken> added_;
  std::vector<int> added_index_of_id_;  // id -> index into added_, -1 for ordinary tokens
  // Added tokens by first byte, longest first: [0] normalized=false ones, matched on the raw text; [1] the
  // normalized=true ones, matched after normalization (as HF).
  std::array<std::vector<std::vector<int>>, 2> added_by_first_byte_;

  bool nfc_ = false;
  std::vector<std::unique_ptr<SplitRegex>> splits_;
  bool add_prefix_space_ = false;

  int pad_id_ = -1, bos_id_ = -1, eos_id_ = -1, handoff_id_ = -1;
  std::optional<ChatTemplate> chat_template_;

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int>> cache_;
};

}  // namespace handoff
