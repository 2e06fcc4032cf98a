#pragma once
// The cloud-call budget of adaptive prompt filtering: how many D² prompts ("all local samples failed, the
// cloud is correct") one training step may keep. Paper §3.1 (ρ bounds calls relative to local answers) and
// §3.3
// (|D_b²| ≤ ρ · |D_b¹|).
//
// Strict mode (carry_remainder = false) is the paper's per-batch cap ⌊ρ·|D¹|⌋. feasibility.md ("The RL step
// on these models") found that with a small |D¹| that floor is 0 batch after batch, so no D² prompt is ever
// kept and the policy collapses to "always local". The default carries the fractional remainder across steps:
//   credit ← min(credit, 1) + ρ·|D¹|;  keep = min(candidates, ⌊credit⌋);  credit ← credit − keep.
// At most one unit of unused budget carries over, so credit never exceeds ρ·|D¹| + 1, unused budget cannot
// pile up, and the kept D² total never exceeds ρ·Σ|D¹| (up to float rounding); the long-run ratio kept D² /
// D¹ reaches ρ when candidates are plentiful.

namespace handoff {

// ρ from a maximum call rate r = |D²| / (|D¹| + |D²|): ρ = r / (1 − r) (paper §3.1, paper.md §2; r = 0.3
// gives ρ = 3/7). Throws Error unless 0 < r < 1.
double budget_from_call_rate(double call_rate);

class BudgetController {
 public:
  // rho in (0, ∞) (it can exceed 1: a call rate above 0.5), else Error.
  explicit BudgetController(double rho, bool carry_remainder = true);

  // How many of `d2_candidates` D² prompts this step may keep, given |D¹| = d1_count; records the spending.
  // Throws Error on negative counts.
  int allow(int d1_count, int d2_candidates);

  double rho() const { return rho_; }
  bool carry_remainder() const { return carry_remainder_; }
  // Unspent budget carried into the next step (always 0 in strict mode). Save it with a checkpoint.
  double credit() const { return credit_; }
  // Restores a saved credit on resume; throws Error unless it is finite and >= 0.
  void restore_credit(double credit);

 private:
  double rho_;
  bool carry_remainder_;
  double credit_ = 0.0;
};

}  // namespace handoff
