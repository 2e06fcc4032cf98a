#pragma once
// Evaluation of one model alone, per difficulty: accuracy of its local answers, its hand-off rate (greedy and
// sampled at the rollout temperature) and format errors. This is what says whether base models show the
// device/cloud spread and whether the hand-off is in the device's distribution before RL.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collab/device_run.h"
#include "io/checkpoint.h"
#include "tasks/task.h"

namespace handoff {

struct DifficultyStats {
  int difficulty = 0;
  int64_t n = 0;
  double accuracy = 0;          // greedy, local answers correct / n
  double handoff_rate = 0;      // greedy
  double format_errors = 0;     // greedy
  bool sampled = false;         // whether the sampled pass ran (sample_temperature > 0)
  double sampled_accuracy = 0;  // at the sampling temperature
  double sampled_handoff_rate = 0;
  double mean_tokens = 0;  // greedy completion length
};

struct BaseEvalOptions {
  std::vector<int> difficulties;  // empty → the task's full range
  int64_t n_per_difficulty = 100;
  double sample_temperature = 1.0;  // 0 skips the sampled pass
  int64_t max_new_tokens = 96;
  uint64_t seed = 1234;
  // kTrain: items of the training distribution (validation: what recipe choices may be measured on).
  Split split = Split::kTest;
  // <= 1: hand off exactly where P(<handoff>) reaches it (the deployment knob, as in collaborative runs).
  double handoff_threshold = 1.1;
  // The hand-off token masked in both passes: what the device solves by itself (a phrase protocol → Error).
  bool ban_handoff = false;
};

std::vector<DifficultyStats> evaluate_base(CausalLM& model, const DeviceSpeech& io, const Task& task,
                                           const BaseEvalOptions& opts);
std::string base_eval_table(const std::vector<DifficultyStats>& stats);  // markdown
nlohmann::json base_eval_json(const std::vector<DifficultyStats>& stats);

}  // namespace handoff
