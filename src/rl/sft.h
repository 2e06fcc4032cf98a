#pragma once
// Supervised warm start: teacher-forced cross-entropy on worked solutions (prompt tokens masked).
// The device mixture carries the hand-off format on a random fraction of items (design.md, issue on the
// embedded default): it teaches the *format* of a call for help, not when to call.
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "model/config.h"
#include "protocol/protocol.h"
#include "rl/sft_options.h"

namespace handoff {

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

// The target text of one SFT item in the protocol's format: the worked solution, or (a hand-off item) a
// prefix of it (0..all steps) followed by the hand-off marker. The default protocol's targets are the task's
// own solution text and "<steps> <handoff>". Exposed for tests.
std::string sft_target(const Protocol& protocol, const std::string& solution, bool handoff,
                       std::mt19937_64& rng);

}  // namespace handoff
