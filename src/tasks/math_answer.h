#pragma once
// Final answers of competition-style math (MATH) and word problems (GSM8K) compared the way a grader would:
// both sides are normalised to one canonical string, numbers to exact rationals (tasks/rational.h), so
// "\dfrac{1}{2}", "1/2", "0.50" and "$0.5$" agree and 0.1+0.2 rounding never fools the verifier.
#include <optional>
#include <string>

#include "tasks/rational.h"

namespace handoff {

// The contents of the LAST \boxed{...} (or \fbox{...}) in `text`, with nested braces balanced
// ("\boxed{\frac{1}{2}}" → "\frac{1}{2}"); also "\boxed 5" (a single token). nullopt when there is none or
// its braces never close.
std::optional<std::string> last_boxed(const std::string& text);

// Canonical form of an answer. In order: the last \boxed{} is unwrapped; "$", "\$", "\!", "\,", "\;",
// "\left",
// "\right", "^\circ", "^{\circ}", "°", "%", "\%" dropped; \text{X} / \textbf{X} / \mbox{X} / \mathrm{X} → X;
// \dfrac and \tfrac → \frac, "\frac12" → "\frac{1}{2}", "\sqrt3" → "\sqrt{3}"; a short variable prefix "x ="
// dropped; trailing unit words ("5 cm", "12 apples", "7 \text{ dollars}") dropped after a number; a final "."
// dropped; all whitespace removed. Then, when the result is a number — an integer or decimal with optional
// sign and thousands commas ("1,234.50"), "a/b", or "\frac{a}{b}" of such numbers — it becomes the exact
// rational's text ("1/2", "-3", "2469/2"), so equal values give equal strings. Anything else stays as
// normalised text.
std::string normalize_math_answer(const std::string& text);

// The exact value of an answer when it normalises to a number (see normalize_math_answer); nullopt otherwise.
std::optional<Rational> math_answer_value(const std::string& text);

// True when both normalise to the same non-empty canonical string.
bool math_answers_equal(const std::string& a, const std::string& b);

}  // namespace handoff
