#pragma once
// Every method of the demo's comparison for one RL seed's models, as rows over the same held-out test set
// (paper §5 rows + practitioners' routers): the device-only and cloud-only anchors, the score routers on top
// of the task-tuned device (route/), the oracle, each RL method deciding itself, and GAPG's hand-off
// threshold (for every method that can hand off). Routers are fit and calibrated on the validation split,
// then applied to test; each self-deciding row is also compared with the best router at its own call rate.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/methods_eval.h"
#include "eval/report_writer.h"

namespace handoff {

// The comparison's knobs (preset demo section; defaults = the recorded runs' values).
struct ComparisonSettings {
  double call_rate = 0.3;    // demo.max_call_rate: every router is calibrated to it
  uint64_t random_seed = 5;  // demo.random_router_seed: the random router of RL seed index i uses seed + i
  // demo.router_sweep: call rates each score router is also calibrated to, for the accuracy-vs-call-rate
  // curves. The recorded runs added 0.1 up from 0, which gives these doubles except 0.30000000000000004 for
  // 0.3; calibrate_threshold reads a rate only through ⌊r·n + 1e-9⌋, equal for both for every n ≤ 10⁶.
  std::vector<double> router_sweep = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6};
  // demo.handoff_threshold_sweep: the GAPG knob's thresholds for its curve.
  std::vector<double> handoff_threshold_sweep = {0.02, 0.05, 0.1, 0.2, 0.35, 0.5};
  int64_t max_new_tokens = 64;
};

// The held-out test and validation items and the cloud's verdicts on test.
struct ComparisonData {
  const Task& task;
  const std::vector<Problem>& test;
  const std::vector<Problem>& val;
  const CloudVerdicts& cloud_test;
};

// One RL seed's models and their greedy verdicts.
struct SeedVerdicts {
  std::map<std::string, std::string> trained;      // algo → model dir
  std::map<std::string, DeviceVerdicts> dev_test;  // algo → verdicts on test
  std::string tt_dir;                              // the task-tuned model (the routers' device)
  DeviceVerdicts tt_val, tt_test;
};
SeedVerdicts seed_verdicts(const std::map<std::string, std::string>& trained, const std::string& base_device,
                           const Task& task, const std::vector<Problem>& test,
                           const std::vector<Problem>& val, int64_t max_new_tokens);

using KeyedRows = std::vector<std::pair<std::string, MethodRow>>;  // key stays the same across seeds

struct SeedComparison {
  KeyedRows rows;
  std::vector<AtRateRow>
      at_rate;  // each self-deciding row (threshold rows too) vs the best router at its rate
  std::vector<RouterAuc> router_auc;  // each calibrated router's AUC for the task-tuned device's failures
};

// Every method's row for one seed (`seed`, index `seed_index` into the run's RL seeds). `curves` (router
// name → [{call_rate, accuracy[, threshold]}]) is filled when not null.
SeedComparison comparison_rows(const ComparisonData& data, const SeedVerdicts& v, const ComparisonSettings& s,
                               size_t seed_index, uint64_t seed, nlohmann::json* curves);

// Each method's accuracy and call rate at every seed (rows_by_seed[i] for seeds[i]); empty for one seed.
std::vector<SeedSpread> seed_spread(const std::vector<KeyedRows>& rows_by_seed,
                                    const std::vector<uint64_t>& seeds);

}  // namespace handoff
