#pragma once
// "carry": a running sum whose difficulty the prompt hides. Every item has the same surface: a start value in
// 40..59 and exactly four single-digit steps with alternating signs ("+ - + -" or "- + - +"), so every prompt
// is 17 characters; what changes with the difficulty is how many of the four steps carry or borrow (cross a
// multiple of ten), which only solving shows.
//   prompt   Q:47 +8 -3 +9 -6?
//   solution 47+8=55 55-3=52 52+9=61 61-6=55 Answer: 55        (47+8 and 52+9 carry: difficulty 3)
// Difficulty = 1 + the number of carries/borrows, in [1, 5]. Values always stay in [0, 99] (the start's tens
// digit is 4 or 5 and each step moves at most one decade), so nothing leaves the chain task's range.
//
// Why carries. In a worked step "47+8=55" the tens digit is written first: a copy of the previous tens digit
// unless the ones digits carry, which needs the ones digit and the step together (a 3-input function instead
// of a copy). MEASURED, this is not enough: the quick preset's device (d=64, 2 layers, 900 SFT steps on this
// task) answers every class correctly (greedy 1.00 on 100 held-out items each of difficulty 1..5; sampled at
// T=1 0.66-0.76 with no trend), so with single-digit steps the hidden class gives no device/cloud spread.
// The surface balancing below is the reusable part; harder steps (two-digit operands, whose tens digit needs
// the ones column's carry before it is written) are the next thing to try.
//
// Why a prompt probe should not see the class. Carries are decided by the ones digits alone (the start's ones
// digit u and the signed steps s: a step carries when u + s leaves 0..9), so a naive generator that keeps the
// draws of the wanted class leaks it through first-order statistics: big steps carry more often (a TV
// distance of 0.36 at one prompt position between 0 and 4 carries, tests/test_hidden_task.cpp). Here the
// class-c items are drawn exactly from Q_c(pattern, u, s1..s4) proportional to h(pattern) a(u) b1(s1)..b4(s4)
// on the items with c carries, the factors fitted (iterative proportional fitting, exact marginals by dynamic
// programming over the ones digit and the carries so far) so that in EVERY class the sign pattern is either
// one with probability 1/2, the start's ones digit is uniform on 0..9 and each step is uniform on -9..-1,
// +1..+9. The tens digit (4 or 5) is uniform and independent. So the character at every prompt position has
// the same distribution in every class, and the sign pattern is the same too (the signs alternate: with free
// signs, equal per-step marginals and equal adjacent-sign statistics cannot both hold for 0 and 4 carries,
// and free signs leaked the class through sign pairs at TV 0.42). What is left is how the digits combine (the
// running ones digit, a sum mod 10): adjacent steps' net effect differs between classes, which is part of
// solving.
#include <array>
#include <vector>

#include "tasks/task.h"

namespace handoff {

class CarryTask : public Task {
 public:
  static constexpr int kSteps = 4;
  static constexpr int kMinTens = 4, kMaxTens = 5;  // start value in 40..59
  static constexpr int kMinDifficulty = 1, kMaxDifficulty = kSteps + 1;

  CarryTask();
  std::string name() const override { return "carry"; }
  int min_difficulty() const override { return kMinDifficulty; }
  int max_difficulty() const override { return kMaxDifficulty; }
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  std::string solution(const Problem& problem) const override;

  // The fitted sampling distribution of one class (tests read its exact marginals).
  struct ClassModel {
    static constexpr int kPatterns = 2;  // the steps' signs alternate: pattern 0 is "+ - + -", 1 is "- + - +"
    std::array<double, 10> start_weight{};                     // a(u), u = start's ones digit
    std::array<std::array<double, 18>, kSteps> step_weight{};  // b_i(s), index 0..8 = -9..-1, 9..17 = +1..+9
    std::array<double, kPatterns> pattern_weight{};            // h(sign pattern)
    // reach[pattern][i][u][n]: total weight of the completions from step i (ones digit u, n carries so far)
    // that keep the sign pattern and end with exactly the class's carry count.
    std::array<std::array<std::array<std::array<double, kSteps + 1>, 10>, kSteps + 1>, kPatterns> reach{};
    std::array<double, 10> start_marginal{};                     // Q_c(u)
    std::array<std::array<double, 18>, kSteps> step_marginal{};  // Q_c(s_i)
    std::array<double, kPatterns> pattern_marginal{};            // Q_c(sign pattern)
  };
  const ClassModel& class_model(int difficulty) const;

 private:
  std::vector<ClassModel> classes_;  // index difficulty - kMinDifficulty
};

}  // namespace handoff
