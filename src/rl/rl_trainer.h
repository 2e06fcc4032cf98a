#pragma once
// RL post-training of the device model (paper §3–§4). One step, in order (paper §4 "One step, in order"):
//   sample prompts → G responses each (batched KV-cache sampling) → parse local answer / hand-off / format →
//   cloud answers (cached) for prompts that called for help or (GAPG) whose samples all failed →
//   rewards (§3.2) → prompt filter D¹ ∪ capped D² (§3.3) → group advantages → one gradient step → metrics.
// Reward, advantage and filter are pure functions in rl/pure/, the stages are rl_step.h, the loss
// policy_loss.h, the methods method_registry.h; this file only wires them together.
#include <cstdint>
#include <string>

#include "rl/rl_options.h"

namespace handoff {

struct RlResult {
  int64_t steps_done = 0;
  int64_t cloud_calls = 0;  // HTTP calls this run paid for (cache misses), before any kill and resume too
  int64_t cloud_prompt_tokens = 0, cloud_completion_tokens = 0;  // what those calls were billed
  double cloud_cost_usd = 0;  // at --cloud-price-in / --cloud-price-out (0 when not priced)
  double seconds = 0;
  double last_reward = 0, last_call_rate = 0, last_local_accuracy = 0;
};

// Trains the model in `init_dir` (a checkpoint) and writes OUT/model (atomic checkpoints with trainer state),
// OUT/metrics.jsonl and, by default, OUT/cloud_cache.jsonl. With `resume`, continues from OUT/model and gives
// the same weights as an uninterrupted run.
RlResult run_rl(const RlOptions& opts, const std::string& init_dir, const std::string& out_dir, bool resume);

}  // namespace handoff
