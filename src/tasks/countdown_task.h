#pragma once
// "countdown" (the paper's symbolic task): reach a target from n given numbers with + - * /, each number used
// at most once (not all need be used).
//   prompt   C:3 5 2 7=16?
//   solution 3+5=8 8*2=16 Answer: (3+5)*2
// Difficulty = n in [2, 5]; numbers are 1..25 and may repeat. The target is the value of a random expression
// tree over all n numbers whose intermediate values are positive integers (exact division only), so a
// solution always exists; targets outside [1, 999] or equal to one of the numbers are redrawn.
// Problem::answer holds that expression; verify() accepts ANY valid expression for the target.
#include <cstdint>
#include <vector>

#include "tasks/task.h"

namespace handoff {

struct CountdownPuzzle {
  std::vector<int64_t> numbers;
  int64_t target = 0;
};

// Inverse of the prompt format; throws Error when the prompt is not a countdown prompt.
CountdownPuzzle parse_countdown_prompt(const std::string& prompt);

class CountdownTask : public SyntheticTask {
 public:
  static constexpr int kMinNumbers = 2, kMaxNumbers = 5;
  static constexpr int kMaxNumber = 25;
  static constexpr int kMaxTarget = 999;

  CountdownTask() : SyntheticTask("countdown", kMinNumbers, kMaxNumbers) {}
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  // Parses the answer with exact rational arithmetic: false (never a throw) for garbage, division by zero,
  // overflow, a number not given or used more often than given, or a wrong value.
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  // One line per operation of Problem::answer, evaluated left to right, then "Answer: <expression>".
  std::string solution(const Problem& problem) const override;
};

}  // namespace handoff
