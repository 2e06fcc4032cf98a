#include "eval/comparison.h"

#include <algorithm>

#include "rl/method_registry.h"
#include "route/handoff_threshold.h"
#include "route/router.h"

namespace handoff {

namespace {

using route::RouterSplit;

// device-only and cloud-only, both over the task-tuned device's verdicts with its hand-offs ignored.
void add_anchor_rows(const ComparisonData& data, const DeviceVerdicts& tt_test, KeyedRows& out) {
  DeviceVerdicts no_handoff = tt_test;
  std::fill(no_handoff.handoff.begin(), no_handoff.handoff.end(), 0);  // a hand-off it emits is simply wrong
  const std::vector<uint8_t> none(data.test.size(), 0), all(data.test.size(), 1);
  out.push_back(
      {"device-only", routed("device-only (task-tuned)", no_handoff, data.cloud_test, data.test, none)});
  out.push_back({"cloud-only", routed("cloud-only", no_handoff, data.cloud_test, data.test, all)});
  out.back().second.device_tokens = 0;  // cloud-only never runs the device
  out.back().second.device_ms = 0;
}

// The score routers on the task-tuned device: fit and calibrated on validation, applied to test; the
// calibrated ones (not the oracle) also swept over the call rates for the curves.
void add_router_rows(const ComparisonData& data, const SeedVerdicts& v, const ComparisonSettings& s,
                     size_t seed_index, nlohmann::json* curves, KeyedRows& out) {
  auto tt = load_checkpoint(v.tt_dir);
  const route::RouterDevice device{tt.model, tt.tokenizer.get()};
  const RouterSplit val{data.val, v.tt_val}, test{data.test, v.tt_test};
  for (const auto& key : route::router_keys()) {
    auto router = route::make_router(key, device, s.random_seed + seed_index);
    router->fit(val);
    const std::vector<double> val_scores = router->score(val), test_scores = router->score(test);
    auto row_at = [&](double rate) {
      return routed(router->name(), v.tt_test, data.cloud_test, data.test,
                    router->decide(test_scores, router->calibrate(val_scores, rate)));
    };
    out.push_back({key, row_at(s.call_rate)});
    if (!curves || key == "oracle") continue;
    for (double x : s.router_sweep) {
      const MethodRow row = row_at(x);
      (*curves)[router->name()].push_back({{"call_rate", row.call_rate()}, {"accuracy", row.accuracy()}});
    }
  }
}

// GAPG's hand-off threshold calibrated on validation to the rate, and (curves) swept.
void add_handoff_threshold_rows(const ComparisonData& data, const std::string& dir,
                                const ComparisonSettings& s, nlohmann::json* curves, KeyedRows& out) {
  auto m = load_checkpoint(dir);
  const route::HandoffThreshold knob({m.model, m.tokenizer.get()}, data.task, s.max_new_tokens);
  const double thr = knob.calibrate(data.val, s.call_rate);
  out.push_back(
      {"gapg+knob", self_routed(knob.name(thr), knob.verdicts(data.test, thr), data.cloud_test, data.test)});
  if (!curves) return;
  for (double t : s.handoff_threshold_sweep) {
    const MethodRow row = self_routed("sweep", knob.verdicts(data.test, t), data.cloud_test, data.test);
    (*curves)["GAPG (ours) + hand-off threshold"].push_back(
        {{"call_rate", row.call_rate()}, {"accuracy", row.accuracy()}, {"threshold", t}});
  }
}

}  // namespace

SeedVerdicts seed_verdicts(const std::map<std::string, std::string>& trained, const std::string& base_device,
                           const Task& task, const std::vector<Problem>& test,
                           const std::vector<Problem>& val, int64_t max_new_tokens) {
  SeedVerdicts v;
  v.trained = trained;
  for (const auto& [algo, dir] : trained) {
    auto m = load_checkpoint(dir);
    v.dev_test[algo] = device_verdicts(m.model, *m.tokenizer, task, test, max_new_tokens);
  }
  const bool has_tt = trained.count("task-tuning") > 0;
  v.tt_dir = has_tt ? trained.at("task-tuning") : base_device;
  auto tt = load_checkpoint(v.tt_dir);
  v.tt_val = device_verdicts(tt.model, *tt.tokenizer, task, val, max_new_tokens);
  v.tt_test = has_tt ? v.dev_test["task-tuning"]
                     : device_verdicts(tt.model, *tt.tokenizer, task, test, max_new_tokens);
  return v;
}

KeyedRows comparison_rows(const ComparisonData& data, const SeedVerdicts& v, const ComparisonSettings& s,
                          size_t seed_index, nlohmann::json* curves) {
  KeyedRows out;
  add_anchor_rows(data, v.tt_test, out);
  add_router_rows(data, v, s, seed_index, curves, out);
  for (const auto& [algo, dir] : v.trained) {
    if (algo == "task-tuning") continue;
    const std::string& name = find_rl_method(algo).label;  // the registry's row name
    out.push_back({algo, self_routed(name, v.dev_test.at(algo), data.cloud_test, data.test)});
    if (algo == "gapg") add_handoff_threshold_rows(data, dir, s, curves, out);
  }
  return out;
}

std::vector<SeedSpread> seed_spread(const std::vector<KeyedRows>& rows_by_seed,
                                    const std::vector<uint64_t>& seeds) {
  std::vector<SeedSpread> spread;
  if (seeds.size() <= 1) return spread;
  for (const auto& [key, row0] : rows_by_seed[0]) {
    SeedSpread sp;
    sp.method = key == "gapg+knob" ? "GAPG (ours) + hand-off threshold calibrated to the rate" : row0.method;
    for (size_t si = 0; si < seeds.size(); ++si)
      for (const auto& [k, r] : rows_by_seed[si])
        if (k == key) {
          sp.seeds.push_back(seeds[si]);
          sp.accuracy.push_back(r.accuracy());
          sp.call_rate.push_back(r.call_rate());
        }
    spread.push_back(sp);
  }
  return spread;
}

}  // namespace handoff
