#pragma once
// "carry": a running sum whose difficulty the prompt hides. Every item has the same surface: a start value in
// 70..99 and exactly four two-digit operands in 11..39 (ones digit 1..9) with alternating signs ("+ - + -" or
// "- + - +"), so every prompt is 21 characters; what changes with the difficulty is in how many of the four
// steps the ones column carries or borrows, which only solving shows.
//   prompt   Q:87 +24 -13 +38 -29?
//   solution 87+24=111 111-13=98 98+38=136 136-29=107 Answer: 107     (four carries/borrows: difficulty 5)
// Difficulty = 1 + the number of carries/borrows, in [1, 5]. Values stay in [3, 166]: three-digit values
// appear in every class (they depend on the tens digits, which are drawn independently of the class).
//
// Why carries. The worked solution writes the result's high digits first, so in "87+24=111" the tens digit
// needs the ones column's carry before it is written (a look-ahead), while without a carry it needs the tens
// digits alone. MEASURED, the effect on the quick preset's device is real but small: after 900 SFT steps
// (`handoff eval --n 100`, greedy) it scores 0.99/0.97/0.96/0.95/0.91 at difficulty 1..5; at 600 steps
// 0.69/0.74/0.56/0.67/0.60, at 450 about 0.1 everywhere (an earlier version with single-digit steps,
// "Q:47 +8 -3 +9 -6?", gave 1.00 on every class at 900). The tiers rise together: the class is a hidden
// difficulty, but a weak one for this device, and this task does NOT yet give the device/cloud spread
// (device <= 0.10 on its hardest class); see configs/carry.json.
//
// Why a prompt probe should not see the class. Carries are decided by the ones digits alone (the start's ones
// digit u and the operands' signed ones digits s: a step carries when u + s leaves 0..9), so a naive
// generator that keeps the draws of the wanted class leaks it through first-order statistics: big ones digits
// carry more often (a TV distance of 0.35 at one prompt position between 0 and 4 carries,
// tests/test_hidden_task.cpp). Here the class-c items are drawn exactly from Q_c(pattern, u, s1..s4)
// proportional to h(pattern) a(u) b1(s1)..b4(s4) on the items with c carries, the factors fitted (iterative
// proportional fitting, exact marginals by dynamic programming over the running ones digit and the carries so
// far) so that in EVERY class the sign pattern is either one with probability 1/2, the start's ones digit is
// uniform on 0..9 and each operand's signed ones digit is uniform on -9..-1, +1..+9. The tens digits
// (start 7..9, operands 1..3) are uniform and independent of everything. So the character at every prompt
// position has the same distribution in every class, and the sign pattern is the same too (the signs
// alternate: with free signs, equal per-step marginals and equal adjacent-sign statistics cannot both hold
// for 0 and 4 carries, and free signs leaked the class through sign pairs at TV 0.42). What is left is how
// the digits combine (the running ones digit, a sum mod 10): adjacent operands' ones digits' net effect
// differs between classes (TV up to 0.41), which is part of solving.
#include <array>
#include <vector>

#include "tasks/task.h"

namespace handoff {

class CarryTask : public Task {
 public:
  static constexpr int kSteps = 4;
  static constexpr int kMinTens = 7, kMaxTens = 9;                // start value in 70..99
  static constexpr int kMinOperandTens = 1, kMaxOperandTens = 3;  // operands 11..39 (ones digit 1..9)
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
