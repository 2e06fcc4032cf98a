// The device grammar of a protocol: paper.md §1 (the hand-off marker counts only when written last) and
// paper §3.2 (the reward's "well formatted" column). The embedded default keeps parse_response() exactly;
// the other forms are read with the same span finders as the cloud's replies (answer_forms.h), and never
// inside a <think> block.
#include <cctype>

#include "protocol/answer_forms.h"
#include "protocol/protocol.h"

namespace handoff {

namespace {

constexpr size_t npos = std::string_view::npos;

std::string_view trim_right(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(0, e);
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

size_t count(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

std::string_view opener(AnswerForm f) {
  switch (f) {
    case AnswerForm::kAnswerLine:
      return kAnswerPrefix;
    case AnswerForm::kAnswerTags:
      return "<answer>";
    case AnswerForm::kBoxed:
      return "\\boxed{";
    case AnswerForm::kHashes:
      return "####";
  }
  return kAnswerPrefix;
}

// The last answer of form `f` in `scope`; for an Answer: line, `end` is the end of the line that holds
// the answer and `same_line` says whether that is the Answer: line itself.
AnswerSpan find_answer(AnswerForm f, std::string_view scope, bool* same_line) {
  *same_line = true;
  switch (f) {
    case AnswerForm::kAnswerTags:
      return last_answer_tag(scope);
    case AnswerForm::kBoxed:
      return last_boxed(scope);
    case AnswerForm::kHashes:
      return last_hashes(scope);
    case AnswerForm::kAnswerLine:
      break;
  }
  const ParsedResponse p = parse_response(scope, true);
  if (p.kind != ResponseKind::kLocalAnswer) return {};
  const size_t pos = scope.rfind(kAnswerPrefix);
  const size_t ans = scope.find(p.answer, pos + kAnswerPrefix.size());
  const size_t line_end = scope.find('\n', ans);
  *same_line = scope.substr(pos, ans - pos).find('\n') == npos;
  return {pos, line_end == npos ? scope.size() : line_end, p.answer};
}

}  // namespace

ParsedResponse Protocol::parse(std::string_view reply, bool ended_with_eos) const {
  if (answer == AnswerForm::kAnswerLine && !think && (handoff_is_token() || handoff == kHandoffAlias))
    return parse_response(reply, ended_with_eos);  // the embedded default's grammar, unchanged
  ParsedResponse out;
  const std::string_view body = trim_right(reply);
  const std::string_view own = trim_text(handoff);
  // 1. A call for help: this protocol's marker, <handoff> or the paper's phrase, written last.
  size_t marker = body.size() >= own.size() && body.substr(body.size() - own.size()) == own ? own.size() : 0;
  if (marker == 0) marker = trailing_handoff_length(body);
  if (marker > 0) {
    out.kind = ResponseKind::kHandoff;
    out.reasoning = std::string(trim_text(body.substr(0, body.size() - marker)));
    return out;
  }
  // 2. A local answer in this protocol's form, outside any <think> block.
  const std::string_view scope = visible_part(body);
  const size_t offset = static_cast<size_t>(scope.data() - body.data());
  bool same_line = true;
  const AnswerSpan a = find_answer(answer, scope, &same_line);
  if (!a.found() || a.text.empty()) {
    out.reasoning = std::string(trim_text(body));
    return out;  // kFormatError
  }
  out.kind = ResponseKind::kLocalAnswer;
  out.answer = a.text;
  out.reasoning = std::string(trim_text(body.substr(0, offset + a.pos)));
  // 3. The format check: one answer, written last, no marker anywhere, a finished reply; with `think`,
  //    "<think>reasoning</think>" first and the answer right after it (R1's format reward).
  bool ok = ended_with_eos && same_line && count(body, opener(answer)) == 1 &&
            trim_text(scope.substr(a.end)).empty() && offset + scope.size() == body.size() &&
            !mentions_handoff(body) && body.find(own) == npos;
  if (think) {
    const size_t close = body.find("</think>");
    ok = ok && starts_with(trim_text(body), "<think>") && count(body, "<think>") == 1 &&
         count(body, "</think>") == 1 && close + 8 <= offset + a.pos &&
         trim_text(body.substr(close + 8, offset + a.pos - close - 8)).empty();
  }
  out.well_formatted = ok;
  return out;
}

std::string Protocol::solution_text(const std::string& reasoning, const std::string& ans) const {
  std::string head;
  if (think) {
    head = "<think>" + std::string(trim_text(reasoning)) + "</think>\n";
  } else {
    head = reasoning;
    if (!head.empty() && !std::isspace(static_cast<unsigned char>(head.back()))) head += '\n';
  }
  switch (answer) {
    case AnswerForm::kAnswerLine:
      return head + std::string(kAnswerPrefix) + " " + ans;
    case AnswerForm::kAnswerTags:
      return head + "<answer>" + ans + "</answer>";
    case AnswerForm::kBoxed:
      return head + "\\boxed{" + ans + "}";
    case AnswerForm::kHashes:
      return head + "#### " + ans;
  }
  return head + ans;
}

std::string Protocol::handoff_text(const std::string& reasoning) const {
  if (think) return "<think>" + std::string(trim_text(reasoning)) + "</think>\n" + handoff;
  return reasoning + handoff;
}

}  // namespace handoff
