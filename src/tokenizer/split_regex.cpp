#include "tokenizer/split_regex.h"

#include <re2/re2.h>

#include "common/error.h"
#include "tokenizer/utf8.h"

namespace handoff {

namespace {

// Unicode White_Space, which Oniguruma's `\s` matches (RE2's `\s` is [\t\n\f\r ] only); is_white_space()
// below is the same set.
constexpr const char* kWhiteSpace =
    "\\t\\n\\x0B\\f\\r "
    "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";
// Oniguruma's Unicode `\w` and `\d`.
constexpr const char* kWord = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
constexpr const char* kDigit = "\\p{Nd}";

bool is_white_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// The tail every supported pattern ends with, and what replaces it (see split()).
constexpr std::string_view kWsTail = "\\s+(?!\\S)|\\s+";
constexpr const char* kWsGroupName = "hf_trailing_ws";

// Rewrites the escapes whose meaning differs between Oniguruma and RE2; rejects lookaround.
std::string translate(const std::string& pattern, const std::string& source) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      const bool negated = e == 'S' || e == 'W' || e == 'D';
      const char* set = nullptr;
      if (e == 's' || e == 'S') set = kWhiteSpace;
      if (e == 'w' || e == 'W') set = kWord;
      if (e == 'd' || e == 'D') set = kDigit;
      if (set == nullptr) {
        out += c;
        out += e;
      } else if (!in_class) {
        out += negated ? "[^" : "[";
        out += set;
        out += "]";
      } else if (!negated) {
        out += set;
      } else {
        throw Error(source + ": pre-tokenizer regex uses \\" + std::string(1, e) +
                        " inside a character class, which is not supported",
                    "only the Qwen2 / Llama-3 / GPT-2 style patterns are");
      }
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (pattern.compare(i, 3, "(?=") == 0 || pattern.compare(i, 3, "(?!") == 0 ||
        pattern.compare(i, 4, "(?<=") == 0 || pattern.compare(i, 4, "(?<!") == 0)
      throw Error(source + ": pre-tokenizer regex has a lookaround RE2 cannot run: " + pattern,
                  "only a trailing \\s+(?!\\S)|\\s+ is supported");
    out += c;
  }
  return out;
}

}  // namespace

const char* SplitRegex::gpt2_pattern() {
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
}

std::string SplitRegex::literal(const std::string& text) {
  return RE2::QuoteMeta(text);
}

SplitRegex::SplitRegex(const std::string& pattern, const std::string& source) {
  std::string p = pattern;
  bool ws_tail = false;
  if (p.size() >= kWsTail.size() && p.compare(p.size() - kWsTail.size(), kWsTail.size(), kWsTail) == 0) {
    p = p.substr(0, p.size() - kWsTail.size()) + "(?P<" + kWsGroupName + ">\\s+)";
    ws_tail = true;
  }
  translated_ = translate(p, source);
  RE2::Options opts;
  opts.set_log_errors(false);
  re_ = std::make_unique<RE2>(translated_, opts);
  if (!re_->ok())
    throw Error(source + ": pre-tokenizer regex does not compile with RE2: " + re_->error(),
                "pattern: " + pattern);
  if (ws_tail) trailing_ws_group_ = re_->NamedCapturingGroups().at(kWsGroupName);
}

SplitRegex::~SplitRegex() = default;

void SplitRegex::split(std::string_view text, std::vector<std::string_view>& out) const {
  const re2::StringPiece input(text.data(), text.size());
  re2::StringPiece m;
  size_t pos = 0;
  while (pos < text.size()) {
    // Match boundaries only, which RE2 finds with its DFA (fast); the capture group is asked for below,
    // rarely.
    if (!re_->Match(input, pos, text.size(), RE2::UNANCHORED, &m, 1)) break;
    const size_t start = static_cast<size_t>(m.data() - text.data());
    size_t end = start + m.size();
    if (end == start) {  // an empty match: step over one character so the scan advances
      end = start + utf8::next(text, start).len;
      if (start > pos) out.push_back(text.substr(pos, start - pos));
      out.push_back(text.substr(start, end - start));
      pos = end;
      continue;
    }
    // RE2 has no lookahead, so the pattern's tail `\s+(?!\S)|\s+` runs as a plain `\s+` in a named group.
    // Oniguruma's `\s+(?!\S)` backtracks until the next character is not a non-space: a whitespace run of k
    // >= 2 characters followed by a non-space yields its first k-1 characters (the last one then starts the
    // next piece, e.g. " world"); a run that ends the text is taken whole, and a single space falls through
    // to the second `\s+`. Since greedy `\s+` always takes the whole run, only the first case needs fixing
    // here: a match of two or more characters that does not end the text, and that came from the tail group
    // (another alternative, e.g. `\s*[\r\n]+`, may match whitespace too), which the same match with groups
    // tells.
    if (trailing_ws_group_ > 0 && end < text.size()) {
      size_t last = end - 1;
      while (last > start && (static_cast<unsigned char>(text[last]) & 0xC0) == 0x80) --last;
      if (last > start && is_white_space(utf8::next(text, last).cp)) {
        std::vector<re2::StringPiece> groups(trailing_ws_group_ + 1);
        if (re_->Match(input, start, text.size(), RE2::ANCHOR_START, groups.data(), trailing_ws_group_ + 1) &&
            groups[trailing_ws_group_].data() != nullptr)
          end = last;
      }
    }
    if (start > pos) out.push_back(text.substr(pos, start - pos));
    out.push_back(text.substr(start, end - start));
    pos = end;
  }
  if (pos < text.size()) out.push_back(text.substr(pos));
}

}  // namespace handoff
