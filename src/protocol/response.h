#pragma once
// One device response, classified: a local answer, a call for help (hand-off), or a format error.
// See paper.md §1 (device grammar) and paper §3.2 (the reward's "well formatted" column). Shared by RL
// training and by collaborative inference, so there is exactly one reading of what the device said.
//
// Grammar: reasoning text, then exactly one of `Answer: <answer>` or the hand-off marker `<handoff>`, then
// EOS. The paper's phrase `<unknown> I need external assistance </unknown>` is accepted as an alias of the
// marker.
#include <cstddef>
#include <string>
#include <string_view>

namespace handoff {

inline constexpr std::string_view kHandoffMarker = "<handoff>";
inline constexpr std::string_view kHandoffAlias = "<unknown> I need external assistance </unknown>";
inline constexpr std::string_view kAnswerPrefix = "Answer:";

enum class ResponseKind {
  kLocalAnswer,  // an answer could be extracted (maybe badly formatted: see well_formatted)
  kHandoff,      // the response ends with the hand-off marker (or its alias): the device calls the cloud
  kFormatError,  // neither: nothing to verify, nothing to forward
};

struct ParsedResponse {
  ResponseKind kind = ResponseKind::kFormatError;
  std::string answer;  // kLocalAnswer only: the answer text, trimmed, never empty; "" otherwise
  bool well_formatted =
      false;  // true only for a kLocalAnswer that follows the grammar exactly (see parse_response)
  std::string reasoning;  // text before the answer / the marker (trimmed); whole text for a format error
};

// Classifies `text`: the decoded completion with the EOS token already removed; `ended_with_eos` says whether
// generation stopped on EOS (false: it hit the length limit). Total: any input gives a result, never an
// Error.
//
//  - kHandoff: the text, ignoring trailing whitespace, ends with `<handoff>` or with the alias (the alias's
//    inner phrase is matched ignoring case and runs of whitespace). A marker quoted mid-text is not a call.
//    EOS is not required: the marker itself ends the device's turn.
//  - kLocalAnswer: otherwise, if the text after the LAST `Answer:` holds an answer: the rest of that line,
//    trimmed (or, if that is blank, the next non-blank line, which counts as a format violation).
//  - kFormatError: otherwise (no `Answer:`, or nothing after the last one).
//
// well_formatted (local answers only): exactly one `Answer:`, no hand-off marker or alias anywhere, the
// answer on the same line as `Answer:` and on the last non-blank line, and the response ended with EOS.
ParsedResponse parse_response(std::string_view text, bool ended_with_eos);

// If `body` (right-trimmed) ends with `<handoff>` or the paper's phrase (spacing and case inside it
// ignored), that marker's length; 0 otherwise.
size_t trailing_handoff_length(std::string_view body);
// Whether `text` holds `<handoff>` or `<unknown>` anywhere (a well-formatted answer holds neither).
bool mentions_handoff(std::string_view text);

// "local-answer" | "handoff" | "format-error" (for logs and metrics).
std::string_view response_kind_name(ResponseKind kind);

}  // namespace handoff
