#pragma once
// The final answer of a cloud reply, in whichever form a real model writes it (issue 17, "answer extraction
// for real replies"): the last `\boxed{…}` (braces balanced, so `\boxed{\frac{1}{2}}` is whole), the last
// `<answer>…</answer>`, a GSM8K `#### …` line, or the device grammar's `Answer:` line (parse_response's
// rule) — whichever comes last in the reply. A reasoning model's `<think>…</think>` is never searched: only
// the text after the last `</think>` counts, and nothing after an unclosed `<think>`. An answer that is
// itself written as `\boxed{…}` (e.g. `Answer: \boxed{7}`) is unwrapped.
// A reply with none of `\boxed{`, `<answer>`, `####`, `<think>`, `</think>` gets exactly parse_response's
// answer, so the embedded cloud's verdicts (and every recorded result) are unchanged.
#include <optional>
#include <string>
#include <string_view>

namespace handoff {

// std::nullopt when the reply holds no answer in any form (callers count it as a wrong cloud answer), or
// when it ends with the hand-off marker (a cloud that hands off has not answered).
std::optional<std::string> extract_final_answer(std::string_view reply);

}  // namespace handoff
