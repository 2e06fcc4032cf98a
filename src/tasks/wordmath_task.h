#pragma once
// "wordmath": GSM8K-style word problems from templates, one arithmetic step per sentence.
//   prompt   Sara picks 5 apples. She picks 3 more apples. She eats 2 of them. How many apples does Sara have
//   now? solution 5+3=8 8-2=6 Answer: 6
// Difficulty = the number of equations in the solution, in [1, 4]. Steps are + or - a number up to 25,
// x2 / x3 / x(2..4), or "half" (only on even values), so each is one small operation a char model can learn;
// every value stays in [1, 200]. The solution is rebuilt by matching each sentence of the prompt against the
// templates, so a Problem needs nothing beyond its prompt.
// Length: prompt + solution reach ~360 characters at difficulty 4 (~160 at 1), so with the char tokenizer
// this task needs a context of 384+ positions; the 256-position tiny models fit only difficulty 1-2 (~230).
#include "tasks/task.h"

namespace handoff {

class WordMathTask : public SyntheticTask {
 public:
  static constexpr int kMinSteps = 1, kMaxSteps = 4;
  static constexpr int kMaxValue = 200;

  WordMathTask() : SyntheticTask("wordmath", kMinSteps, kMaxSteps) {}
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  std::string solution(const Problem& problem) const override;
};

}  // namespace handoff
