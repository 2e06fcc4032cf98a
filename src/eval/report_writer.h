#pragma once
// The demo's outputs: results.json (every method's numbers), report.md (table + plots), SVG plots
// (accuracy vs cloud-call rate for every method; GAPG training curves).
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/methods_eval.h"

namespace handoff {

// One method's result at every RL seed of the run (the same held-out set, routers refit per seed).
struct SeedSpread {
  std::string method;
  std::vector<uint64_t> seeds;
  std::vector<double> accuracy, call_rate;
};

// A method that decides itself against the best calibrated router at that method's realised call rate, on
// the same test items (issue 15 §2). The router is calibrated on validation to the method's test rate; its
// own test rate is what it realised.
struct AtRateRow {
  std::string method;
  uint64_t seed = 0;
  double call_rate = 0, accuracy = 0;
  std::string router;
  double router_call_rate = 0, router_accuracy = 0;
  double diff = 0, diff_lo = 0, diff_hi = 0;  // method − router, 95 % paired bootstrap over the items
  // The same against the paper's own baseline router (the prompt classifier, paper.md §5), whether or not it
  // is the best: the paper's +9.5 points are measured against it. Absent when the run has no prompt router.
  bool has_paper_router = false;
  double paper_router_call_rate = 0, paper_router_accuracy = 0;
  double paper_diff = 0, paper_diff_lo = 0, paper_diff_hi = 0;
};

// How well a router's score predicts the task-tuned device's failures (issue 15 §3): ROC AUC on each split.
struct RouterAuc {
  std::string router;
  uint64_t seed = 0;
  double val_auc = 0, test_auc = 0;  // NaN where a split has no failures or no successes
};

struct ReportInputs {
  std::vector<MethodRow> rows;  // must include "device-only (task-tuned)" and "cloud-only"
  nlohmann::json curves;        // router name → [{call_rate, accuracy}]
  nlohmann::json times;         // stage → seconds
  double call_rate_target = 0.3;
  std::string preset, task, device_model, cloud_model;
  std::map<std::string, std::string> metrics_files;        // algo → metrics.jsonl
  std::vector<SeedSpread> seed_spread;                     // empty for a single-seed run
  std::vector<AtRateRow> at_rate;                          // every seed's
  std::vector<RouterAuc> router_auc;                       // every seed's
  nlohmann::json algo_options = nlohmann::json::object();  // method → options beyond the preset's rl section
  std::vector<std::pair<double, MethodRow>> gapg_by_rate;  // GAPG trained at other target rates (seed 1)
};

// Writes out_dir/results.json, report.md and the SVG plots. The tables and the methods part of results.json
// come from eval/pure/report.h.
void write_report(const ReportInputs& in, const std::string& out_dir);

}  // namespace handoff
