#pragma once
// Giving a real checkpoint the hand-off token: a pretrained Qwen2/Llama tokenizer has no "<handoff>", so it
// is appended as a special token with a new embedding row (and LM-head row when untied) before SFT/RL teach
// its use.
#include <cstdint>
#include <string>

#include "protocol/response.h"

namespace handoff {

struct AddedToken {
  std::string token;
  int64_t id = 0;  // = the embedding's old row count
  int64_t old_vocab_size = 0;
  int64_t new_vocab_size = 0;    // old + 1, written to config.json
  bool resized_lm_head = false;  // false when the embeddings are tied (the head is the embedding)
};

// Reads checkpoint IN (config.json, model.safetensors or shards, tokenizer.json, any other files) and writes
// OUT, via OUT.tmp + rename, with `token` added:
//   tokenizer.json   appended to "added_tokens" (special: true) with id = the embedding's row count; edited
//   as
//                    JSON, so any tokenizer model type (BPE, Unigram, WordPiece) works
//   tokenizer_config.json  the same entry in "added_tokens_decoder", when that file has one; a SentencePiece
//                    checkpoint without tokenizer.json (tokenizer.model alone) keeps the token only here, so
//                    the file and the section are created when missing
//   weights          model.embed_tokens.weight (and lm_head.weight when untied) gain one row, the mean of the
//                    existing rows; every tensor keeps its dtype (bf16 stays bf16); written as one file
//   config.json      vocab_size + 1, every other field kept
// Throws Error naming the file when IN is not a checkpoint, the token is already present, the weights and
// config.json disagree on the vocabulary size, or OUT already exists (or is IN).
AddedToken add_special_token(const std::string& in_dir, const std::string& out_dir,
                             const std::string& token = std::string(kHandoffMarker));

}  // namespace handoff
