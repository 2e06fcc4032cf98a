#pragma once
// Exact evaluation of a small arithmetic language: non-negative integer literals, + - * /, parentheses,
// spaces. Used to check Countdown answers written by a model, so it must accept nothing else, never throw and
// never crash on garbage ("((", "3//4", a 10,000-deep nest); and to turn a solution expression into a worked
// trace.
#include <optional>
#include <string>
#include <vector>

#include "tasks/rational.h"

namespace handoff {

// One binary operation as it was evaluated: lhs op rhs = result.
struct ExprStep {
  Rational lhs, rhs, result;
  char op = '+';
};

struct ExprValue {
  Rational value;
  std::vector<int64_t> literals;  // every integer literal, in reading order (what the expression "uses")
  std::vector<ExprStep> steps;    // binary operations in evaluation order (left-to-right, innermost first)
};

// nullopt on any syntax error, unary minus, a literal of more than 9 digits, nesting deeper than 64,
// division by zero or int64 overflow.
std::optional<ExprValue> evaluate_expression(const std::string& text);

}  // namespace handoff
