#pragma once
// The pre-tokenizer regex of byte-level BPE tokenizers (HF `Split` with behavior "Isolated", and the GPT-2
// regex of `ByteLevel` with use_regex), run with RE2.
//
// HF tokenizers compile these patterns with Oniguruma; RE2 differs in two ways that matter here:
//  - `\s` / `\S` are ASCII-only in RE2 but Unicode White_Space in Oniguruma: they are rewritten to an
//  explicit
//    class of the White_Space code points (`\d` and `\w` likewise to their Unicode meaning).
//  - RE2 has no lookahead, and every Qwen2 / Llama-3 / GPT-2 pattern ends in `\s+(?!\S)|\s+`: see split().
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace handoff {

class SplitRegex {
 public:
  // `pattern` in Oniguruma syntax as it appears in tokenizer.json; throws Error (naming `source`) for
  // constructs RE2 cannot express.
  SplitRegex(const std::string& pattern, const std::string& source);
  ~SplitRegex();
  SplitRegex(const SplitRegex&) = delete;
  SplitRegex& operator=(const SplitRegex&) = delete;

  // Appends to `out` the pieces of `text`: every match, and every stretch between matches, in order
  // (HF's "Isolated" behavior). The pieces are views into `text` and concatenate to it.
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // The pattern given to RE2 (for error messages and tests).
  const std::string& translated() const { return translated_; }

  // GPT-2's pattern, used by ByteLevel with use_regex = true.
  static const char* gpt2_pattern();
  // A pattern matching `text` literally (Split with {"String": text}).
  static std::string literal(const std::string& text);

 private:
  std::string translated_;
  std::unique_ptr<re2::RE2> re_;
  int trailing_ws_group_ = -1;  // capture group standing in for `\s+(?!\S)|\s+`, or -1
};

}  // namespace handoff
