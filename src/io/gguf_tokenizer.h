#pragma once
// The tokenizer part of a GGUF export: llama.cpp's "gpt2" (byte-level BPE) tokenizer with the vocabulary,
// the merges, each token's type, the special ids and the pre-tokenizer's llama.cpp name.
#include <cstdint>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

struct GgufVocab {
  std::string model = "gpt2", pre;  // pre: "default" (char vocabularies), "qwen2", "llama-bpe", "gpt-2"
  std::vector<std::string> tokens;  // n_vocab entries, in GPT-2's byte-symbol form; holes are "[PADi]"
  std::vector<int32_t> types;       // 1 normal, 3 control, 4 user-defined (the hand-off token), 5 unused
  std::vector<std::string> merges;  // "a b"; empty for char vocabularies (every character is one token)
  int bos = -1, eos = -1, pad = -1, eot = -1;
  std::string chat_template;  // tokenizer_config.json's Jinja template, when there is one
};
enum GgufTokenType : int32_t { kTokenNormal = 1, kTokenControl = 3, kTokenUserDefined = 4, kTokenUnused = 5 };

// `n_vocab` is the model's embedding rows (≥ the tokenizer's ids; the rest are holes). Throws Error for a
// tokenizer llama.cpp's gpt2 model cannot express: SentencePiece, a BPE that is not byte-level, or a
// pre-tokenizer regex llama.cpp has no name for.
GgufVocab gguf_vocab(const Tokenizer& tok, int64_t n_vocab);
void add_gguf_vocab(GgufWriter& w, const GgufVocab& v);

}  // namespace handoff
