#pragma once
// Supervised warm start: teacher-forced cross-entropy on worked solutions (prompt tokens masked).
// The device mixture carries the hand-off format on a random fraction of items (design.md, issue on the
// embedded default): it teaches the *format* of a call for help, not when to call.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace handoff {

struct SftOptions {
  std::string task = "chain";
  std::vector<int> difficulties;  // training mix, uniform over these; empty → the task's full range
  int64_t steps = 1000;
  int64_t batch_size = 64;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr · min_lr_ratio
  int64_t warmup_steps = 100;
  double weight_decay = 0.05;
  double grad_clip = 1.0;
  double handoff_fraction = 0.0;  // fraction of items whose target ends in <handoff> after a solution prefix
  uint64_t seed = 1;
  int64_t log_every = 50;
  int64_t checkpoint_every = 500;
  std::string device = "cpu";
  bool quiet = false;
  // > 0: stop (with a checkpoint) at this step of the o.steps schedule, as if interrupted: tests, time boxes,
  // and the cloud reference model (its cosine schedule is 6,000 steps; it is stopped at 1,500).
  int64_t stop_at_step = -1;

  nlohmann::json to_json() const;
  static SftOptions from_json(const nlohmann::json& j, const std::string& source);  // unknown keys → Error
};

struct SftResult {
  int64_t steps_done = 0;
  double final_loss = 0;
  double seconds = 0;
  double tokens_per_s = 0;
};

// Trains a fresh model (or resumes from OUT/model when `resume`) and writes OUT/model (checkpoint, atomic),
// OUT/metrics.jsonl (one line per logged step) and a progress line on stderr.
SftResult run_sft(const ModelConfig& model_config, const SftOptions& opts, const std::string& out_dir,
                  bool resume);

// The target text of one SFT item: the worked solution, or with probability handoff_fraction a prefix of it
// (0..all steps) followed by "<handoff>". Exposed for tests.
std::string sft_target(const std::string& solution, bool handoff, std::mt19937_64& rng);

}  // namespace handoff
