#pragma once
// The written forms of a final answer that real models use, found in a reply's text: the last balanced
// `\boxed{…}`, the last closed `<answer>…</answer>`, the last `#### …` line; and the part of a reply outside
// a reasoning model's `<think>` block. Shared by the cloud's answer extraction (final_answer.h) and the
// device's protocol grammar (protocol.h), so both read a form the same way.
#include <cstddef>
#include <string>
#include <string_view>

namespace handoff {

struct AnswerSpan {
  static constexpr size_t npos = std::string_view::npos;
  size_t pos = npos;  // where the form starts in the searched text; npos: not found
  size_t end = npos;  // one past its last character
  std::string text;   // the answer inside it, trimmed
  bool found() const { return pos != npos; }
};

std::string_view trim_text(std::string_view s);
// After the last "</think>", and before an unclosed "<think>" that follows it (or opens the reply).
std::string_view visible_part(std::string_view reply);
// The last \boxed{…} whose braces close; an unclosed one (a cut reply) is skipped for an earlier one.
AnswerSpan last_boxed(std::string_view t);
// The last <answer>…</answer> that closes; an unclosed one (a cut reply) is skipped for an earlier one.
AnswerSpan last_answer_tag(std::string_view t);
// The last "#### …" line (to its end).
AnswerSpan last_hashes(std::string_view t);

}  // namespace handoff
