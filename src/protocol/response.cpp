// Device response parser: paper.md §1 (grammar, hand-off marker) and §3.2 (format column of the reward).
#include "protocol/response.h"

#include <cctype>
#include <cstddef>

namespace handoff {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

std::string_view trim_right(std::string_view s) {
  size_t e = s.size();
  while (e > 0 && is_space(s[e - 1])) --e;
  return s.substr(0, e);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Lower-cased words of `s` joined by single spaces: "  I need\n EXTERNAL  assistance " -> "i need external
// assistance".
std::string normalized_words(std::string_view s) {
  std::string out;
  bool pending_space = false;
  for (char c : s) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

size_t count_occurrences(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

}  // namespace

size_t trailing_handoff_length(std::string_view body) {
  if (ends_with(body, kHandoffMarker)) return kHandoffMarker.size();
  // The paper's alias: "<unknown> I need external assistance </unknown>", tolerant of spacing and case
  // inside.
  constexpr std::string_view kOpen = "<unknown>", kClose = "</unknown>";
  if (!ends_with(body, kClose)) return 0;
  const std::string_view before_close = body.substr(0, body.size() - kClose.size());
  const size_t open = before_close.rfind(kOpen);
  if (open == std::string_view::npos) return 0;
  const std::string_view phrase = before_close.substr(open + kOpen.size());
  if (normalized_words(phrase) != "i need external assistance") return 0;
  return body.size() - open;
}

bool mentions_handoff(std::string_view text) {
  return text.find(kHandoffMarker) != std::string_view::npos ||
         text.find("<unknown>") != std::string_view::npos;
}

ParsedResponse parse_response(std::string_view text, bool ended_with_eos) {
  ParsedResponse out;
  const std::string_view body = trim_right(text);

  // 1. A call for help: the marker is the last thing the device wrote (paper.md §1).
  if (const size_t marker = trailing_handoff_length(body); marker > 0) {
    out.kind = ResponseKind::kHandoff;
    out.reasoning = std::string(trim(body.substr(0, body.size() - marker)));
    return out;
  }

  // 2. A local answer: what follows the last "Answer:".
  const size_t at = body.rfind(kAnswerPrefix);
  if (at == std::string_view::npos) {
    out.reasoning = std::string(trim(body));
    return out;  // kFormatError
  }
  const std::string_view after = body.substr(at + kAnswerPrefix.size());
  size_t line_end = after.find('\n');
  std::string_view answer = trim(after.substr(0, line_end));
  bool answer_on_prefix_line = true;
  while (answer.empty() &&
         line_end != std::string_view::npos) {  // "Answer:\n42": take the next non-blank line
    answer_on_prefix_line = false;
    const size_t line_begin = line_end + 1;
    line_end = after.find('\n', line_begin);
    answer =
        trim(after.substr(line_begin, line_end == std::string_view::npos ? line_end : line_end - line_begin));
  }
  if (answer.empty()) {
    out.reasoning = std::string(trim(body));
    return out;  // kFormatError: "Answer:" with nothing after it
  }
  const bool answer_on_last_line = line_end == std::string_view::npos || trim(after.substr(line_end)).empty();

  out.kind = ResponseKind::kLocalAnswer;
  out.answer = std::string(answer);
  out.reasoning = std::string(trim(body.substr(0, at)));
  out.well_formatted = ended_with_eos && answer_on_prefix_line && answer_on_last_line &&
                       count_occurrences(body, kAnswerPrefix) == 1 && !mentions_handoff(body);
  return out;
}

std::string_view response_kind_name(ResponseKind kind) {
  switch (kind) {
    case ResponseKind::kLocalAnswer:
      return "local-answer";
    case ResponseKind::kHandoff:
      return "handoff";
    case ResponseKind::kFormatError:
      return "format-error";
  }
  return "unknown";
}

}  // namespace handoff
