#pragma once
// Adaptive prompt filtering (paper §3.3): which prompts of a sampled batch the GAPG update uses.
//   D¹: at least one of the G local samples is correct (teaches solving alone; all-correct groups included —
//       their advantages are zero, but they count toward the budget);
//   D²: all G local samples fail and the cloud is correct (teaches calling for help), at most the budget's
//   cap,
//       chosen at random among the candidates;
//   everything else (all fail and the cloud fails too; D² candidates beyond the cap) is dropped.
// The batch is not refilled after filtering.
#include <random>
#include <vector>

#include "rl/pure/budget.h"

namespace handoff {

struct PromptOutcome {
  int group_size = 0;           // G, the number of device samples for the prompt (>= 2)
  int local_correct_count = 0;  // how many of them answered locally and correctly (0..G)
  bool cloud_correct = false;   // whether the cloud's (cached) answer to the prompt is correct
};

// Index lists refer to positions in the input batch, each sorted ascending.
struct FilterResult {
  std::vector<int> kept;           // d1 ∪ d2_kept: the prompts the update uses
  std::vector<int> d1;             // ≥ 1 locally correct sample
  std::vector<int> d2_kept;        // the D² candidates kept under the budget
  std::vector<int> d2_candidates;  // all local samples failed, cloud correct
  std::vector<int> dropped;        // everything not kept
  int d2_cap = 0;                  // how many D² prompts the budget allowed this step

  int num_kept() const { return static_cast<int>(kept.size()); }
  int num_d1() const { return static_cast<int>(d1.size()); }
  int num_d2_kept() const { return static_cast<int>(d2_kept.size()); }
  int num_d2_candidates() const { return static_cast<int>(d2_candidates.size()); }
  int num_dropped() const { return static_cast<int>(dropped.size()); }
  // Kept prompts / batch size (0 for an empty batch).
  double kept_fraction() const {
    const int n = num_kept() + num_dropped();
    return n == 0 ? 0.0 : static_cast<double>(num_kept()) / n;
  }
};

// Splits one batch into D¹ / D² / dropped, spending the budget's credit for |D²| and drawing the kept D²
// prompts uniformly at random from `rng` (no draw when every candidate fits). Deterministic given the rng
// state and the budget's state. Throws Error, naming the prompt, when G < 2 or the correct count is outside
// 0..G.
FilterResult filter_prompts(const std::vector<PromptOutcome>& batch, BudgetController& budget,
                            std::mt19937_64& rng);

}  // namespace handoff
