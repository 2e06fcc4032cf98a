#pragma once
// A checkpoint handoff loads (Llama, Qwen2, Qwen3; char-level or byte-level BPE tokenizer) as one GGUF file
// that llama.cpp runs: the same weights under ggml's tensor names, the hyper-parameters under the
// architecture's keys, and the tokenizer with its special tokens and the hand-off token.
//
// Two things a plain copy would get wrong, both as llama.cpp's own convert_hf_to_gguf.py does them:
//  - llama.cpp's "llama" architecture rotates adjacent pairs (RoPE "NORM") where Hugging Face (and handoff)
//    rotate the two halves of each head (rotate_half), so q_proj / k_proj rows (and biases) are permuted per
//    head: new row 2i is old row i, new row 2i+1 is old row i + head_dim/2. "qwen2" / "qwen3" rotate halves
//    ("NEOX") and are written as they are.
//  - GGUF's "gpt2" tokenizer reads token strings in GPT-2's byte-to-symbol form (space is "Ġ"); byte-level
//    BPE vocabularies already are, handoff's char vocabularies store raw characters and are converted.
// The hand-off token is written as a user-defined token (type 4), not a control token: llama.cpp prints
// control tokens only on request, and a reply's hand-off must show in its text.
#include <map>
#include <string>

#include "io/checkpoint.h"
#include "io/gguf_writer.h"

namespace handoff {

struct GgufExportSummary {
  std::string arch, tokenizer_model, pre_tokenizer;
  int64_t tensors = 0, vocab = 0;
  std::map<std::string, int> tensors_by_type;  // "f32" → count, …
  // Matrices that could not take the requested type and were written as f16 (q8_0 needs rows of a
  // multiple of 32 values, as llama.cpp's converter does the same).
  std::vector<std::string> fell_back_to_f16;
};

// Parses "f32" | "f16" | "q8_0"; Error naming the value otherwise.
GgmlType parse_gguf_type(const std::string& s);

// Writes `out` atomically (complete or absent). Throws Error naming what is unsupported (architecture,
// tokenizer kind, pre-tokenizer llama.cpp has no name for, a tensor it has no place for).
GgufExportSummary export_gguf(const LoadedModel& m, const std::string& out, GgmlType type);

// The per-head row permutation for llama's RoPE convention (exposed for tests): `w` has groups × head_dim
// rows (a weight [rows, cols] or a bias [rows]).
at::Tensor permute_for_llama_rope(const at::Tensor& w, int64_t groups);

}  // namespace handoff
