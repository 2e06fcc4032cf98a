#include "protocol/final_answer.h"

#include <cctype>

#include "protocol/answer_forms.h"
#include "protocol/response.h"

namespace handoff {

namespace {
constexpr size_t npos = std::string_view::npos;
}  // namespace

std::optional<std::string> extract_final_answer(std::string_view reply) {
  const std::string_view text = visible_part(reply);
  const ParsedResponse parsed = parse_response(text, true);
  if (parsed.kind == ResponseKind::kHandoff) return std::nullopt;
  AnswerSpan best;
  if (parsed.kind == ResponseKind::kLocalAnswer) best = {text.rfind(kAnswerPrefix), npos, parsed.answer};
  for (AnswerSpan c : {last_boxed(text), last_answer_tag(text), last_hashes(text)})
    if (c.pos != npos && !c.text.empty() && (best.pos == npos || c.pos > best.pos)) best = std::move(c);
  if (best.pos == npos) return std::nullopt;
  if (best.text.find("\\boxed{") != npos) {  // "Answer: \boxed{7}", "<answer>\boxed{7}</answer>"
    AnswerSpan inner = last_boxed(best.text);
    if (inner.pos != npos && !inner.text.empty()) best.text = std::move(inner.text);
  }
  if (best.text.empty()) return std::nullopt;
  return best.text;
}

}  // namespace handoff
