#include "protocol/final_answer.h"

#include <cctype>

#include "protocol/response.h"

namespace handoff {

namespace {

constexpr size_t npos = std::string_view::npos;

struct Candidate {
  size_t pos = npos;  // where the form starts in the searched text
  std::string text;
};

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// After the last "</think>", and before an unclosed "<think>" that follows it (or opens the reply).
std::string_view visible_part(std::string_view reply) {
  if (const size_t close = reply.rfind("</think>"); close != npos) reply = reply.substr(close + 8);
  if (const size_t open = reply.find("<think>"); open != npos) reply = reply.substr(0, open);
  return reply;
}

// The last \boxed{…} whose braces close; an unclosed one (a cut reply) is skipped for an earlier one.
Candidate last_boxed(std::string_view t) {
  const std::string_view head = "\\boxed{";
  for (size_t at = t.rfind(head); at != npos; at = at == 0 ? npos : t.rfind(head, at - 1)) {
    int depth = 1;
    size_t i = at + head.size();
    for (; i < t.size() && depth > 0; ++i) depth += t[i] == '{' ? 1 : t[i] == '}' ? -1 : 0;
    if (depth == 0) return {at, std::string(trim(t.substr(at + head.size(), i - 1 - at - head.size())))};
  }
  return {};
}

// The last <answer>…</answer> that closes; an unclosed one (a cut reply) is skipped for an earlier one.
Candidate last_answer_tag(std::string_view t) {
  for (size_t open = t.rfind("<answer>"); open != npos;
       open = open == 0 ? npos : t.rfind("<answer>", open - 1)) {
    const size_t close = t.find("</answer>", open);
    if (close != npos) return {open, std::string(trim(t.substr(open + 8, close - open - 8)))};
  }
  return {};
}

Candidate last_hashes(std::string_view t) {
  const size_t at = t.rfind("####");
  if (at == npos) return {};
  const size_t end = t.find('\n', at);
  return {at, std::string(trim(t.substr(at + 4, end == npos ? npos : end - at - 4)))};
}

}  // namespace

std::optional<std::string> extract_final_answer(std::string_view reply) {
  const std::string_view text = visible_part(reply);
  const ParsedResponse parsed = parse_response(text, true);
  if (parsed.kind == ResponseKind::kHandoff) return std::nullopt;
  Candidate best;
  if (parsed.kind == ResponseKind::kLocalAnswer) best = {text.rfind(kAnswerPrefix), parsed.answer};
  for (Candidate c : {last_boxed(text), last_answer_tag(text), last_hashes(text)})
    if (c.pos != npos && !c.text.empty() && (best.pos == npos || c.pos > best.pos)) best = std::move(c);
  if (best.pos == npos) return std::nullopt;
  if (best.text.find("\\boxed{") != npos) {  // "Answer: \boxed{7}", "<answer>\boxed{7}</answer>"
    Candidate inner = last_boxed(best.text);
    if (inner.pos != npos && !inner.text.empty()) best.text = std::move(inner.text);
  }
  if (best.text.empty()) return std::nullopt;
  return best.text;
}

}  // namespace handoff
