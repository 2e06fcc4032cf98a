#pragma once
// The call-rate controller's last resort against a swinging decision (issue 15 §1; docs/method.md §3.4): over
// the last part of a run, every iterate whose greedy call rate the controller measured is a candidate, and
// the run ends on the one measured closest to the target instead of on whichever point of a swing the last
// step happened to reach. Constrained RL commonly returns the best feasible iterate rather than the last;
// here "best" is the distance to the target rate, measured on train-split probe prompts only — the
// held-out split is never seen. The candidate is saved (atomically) to OUT/selected when found, so a
// killed run resumes with it.
#include <cstdint>
#include <string>

#include "protocol/protocol.h"

#include "model/decoder.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

class IterateSelection {
 public:
  // Candidates are the iterates after `from_step` or more updates; target in (0, 1).
  IterateSelection(std::string dir, double target, int64_t from_step);

  // On resume after `step` updates: the candidate saved in dir, if it is not from a later step (a kill
  // after the candidate's save but before the run's checkpoint replays those steps and finds it again).
  void restore(int64_t step);
  // A measurement of the weights after `step` updates. Saves them when their rate is at least as close to
  // the target as the best so far (ties go to the later, longer-trained iterate).
  void offer(int64_t step, double rate, CausalLM& model, const Tokenizer& tok, const Protocol& protocol);
  // Loads the selected weights into `model`: returns the selected step, or -1 when nothing was offered.
  int64_t apply(CausalLM& model) const;

  int64_t selected_step() const { return step_; }
  double selected_rate() const { return rate_; }

 private:
  std::string dir_;
  double target_;
  int64_t from_step_;
  int64_t step_ = -1;
  double rate_ = -1;
};

}  // namespace handoff
