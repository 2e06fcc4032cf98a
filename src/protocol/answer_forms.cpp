#include "protocol/answer_forms.h"

#include <cctype>

namespace handoff {

namespace {
constexpr size_t npos = std::string_view::npos;
}  // namespace

std::string_view trim_text(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string_view visible_part(std::string_view reply) {
  if (const size_t close = reply.rfind("</think>"); close != npos) reply = reply.substr(close + 8);
  if (const size_t open = reply.find("<think>"); open != npos) reply = reply.substr(0, open);
  return reply;
}

AnswerSpan last_boxed(std::string_view t) {
  const std::string_view head = "\\boxed{";
  for (size_t at = t.rfind(head); at != npos; at = at == 0 ? npos : t.rfind(head, at - 1)) {
    int depth = 1;
    size_t i = at + head.size();
    for (; i < t.size() && depth > 0; ++i) depth += t[i] == '{' ? 1 : t[i] == '}' ? -1 : 0;
    if (depth == 0)
      return {at, i, std::string(trim_text(t.substr(at + head.size(), i - 1 - at - head.size())))};
  }
  return {};
}

AnswerSpan last_answer_tag(std::string_view t) {
  for (size_t open = t.rfind("<answer>"); open != npos;
       open = open == 0 ? npos : t.rfind("<answer>", open - 1)) {
    const size_t close = t.find("</answer>", open);
    if (close != npos) return {open, close + 9, std::string(trim_text(t.substr(open + 8, close - open - 8)))};
  }
  return {};
}

AnswerSpan last_hashes(std::string_view t) {
  const size_t at = t.rfind("####");
  if (at == npos) return {};
  const size_t end = t.find('\n', at);
  return {at, end == npos ? t.size() : end,
          std::string(trim_text(t.substr(at + 4, end == npos ? npos : end - at - 4)))};
}

}  // namespace handoff
