#pragma once
// "chain" (the default task): a start value and k single-digit additions/subtractions, values kept in 0..99.
//   prompt   Q:23 +4 -7?
//   solution 23+4=27 27-7=20 Answer: 20
// Difficulty = k in [1, 8]. Per-step errors compound (accuracy ~ p^k), which is what spreads a small device
// model and a stronger cloud model apart by difficulty (see shared/feasibility.md). Kept to + and - because
// multi-digit multiplication is out of reach of the tiny char models in minutes of training.
#include "tasks/task.h"

namespace handoff {

class ChainTask : public SyntheticTask {
 public:
  static constexpr int kMinSteps = 1, kMaxSteps = 8;
  static constexpr int kMinStart = 2, kMaxStart = 50;
  static constexpr int kMaxValue = 99;  // every running value stays in [0, kMaxValue]

  ChainTask() : SyntheticTask("chain", kMinSteps, kMaxSteps) {}
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  std::string solution(const Problem& problem) const override;
};

}  // namespace handoff
