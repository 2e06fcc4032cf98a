#include "eval/comparison.h"

#include <algorithm>

#include "eval/pure/bootstrap.h"
#include "rl/method_registry.h"
#include "route/handoff_threshold.h"
#include "route/pure/auc.h"
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

// "GAPG (ours)" of the label "GAPG (ours): the device decides".
std::string method_short_name(const std::string& algo) {
  const std::string& label = find_rl_method(algo).label;
  return label.substr(0, label.find(": "));
}

// 1 where the device did not answer correctly by itself (wrong, a format error or a hand-off).
std::vector<uint8_t> failures(const DeviceVerdicts& d) {
  std::vector<uint8_t> f(d.local_correct.size());
  for (size_t i = 0; i < f.size(); ++i) f[i] = !d.local_correct[i];
  return f;
}

// A router fit on validation, with its scores on both splits: calibrated to any rate without refitting.
struct FittedRouter {
  std::unique_ptr<route::Router> router;
  std::vector<double> val_scores, test_scores;
};

// The score routers on the task-tuned device: fit and calibrated on validation, applied to test; the
// calibrated ones (not the oracle) also swept over the call rates for the curves, and returned for the
// at-rate comparison.
std::vector<FittedRouter> add_router_rows(const ComparisonData& data, const SeedVerdicts& v,
                                          const ComparisonSettings& s, size_t seed_index,
                                          nlohmann::json* curves, KeyedRows& out) {
  std::vector<FittedRouter> fitted;
  auto tt = load_checkpoint(v.tt_dir);
  const route::RouterDevice device{tt.model, tt.tokenizer.get(), &tt.protocol};
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
    if (key == "oracle") continue;  // it reads the test verdicts: a bound, not a router to beat
    if (curves)
      for (double x : s.router_sweep) {
        const MethodRow row = row_at(x);
        (*curves)[router->name()].push_back({{"call_rate", row.call_rate()}, {"accuracy", row.accuracy()}});
      }
    fitted.push_back({std::move(router), val_scores, test_scores});
  }
  return fitted;
}

// A hand-off-capable method's threshold calibrated on validation to the rate (its own row: every such
// method gets it, never one alone), and (curves, GAPG's) swept.
void add_handoff_threshold_rows(const ComparisonData& data, const std::string& algo, const std::string& dir,
                                const ComparisonSettings& s, nlohmann::json* curves, KeyedRows& out) {
  auto m = load_checkpoint(dir);
  if (!m.protocol.handoff_is_token())
    return;  // the knob needs the <handoff> token; a phrase has no threshold
  const route::HandoffThreshold knob({m.model, m.tokenizer.get(), &m.protocol}, data.task, s.max_new_tokens);
  const double thr = knob.calibrate(data.val, s.call_rate);
  out.push_back({algo + "+knob", self_routed(route::HandoffThreshold::name(method_short_name(algo), thr),
                                             knob.verdicts(data.test, thr), data.cloud_test, data.test)});
  if (!curves || algo != "gapg") return;
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
    v.dev_test[algo] = device_verdicts(m.model, {*m.tokenizer, m.protocol}, task, test, max_new_tokens);
  }
  const bool has_tt = trained.count("task-tuning") > 0;
  v.tt_dir = has_tt ? trained.at("task-tuning") : base_device;
  auto tt = load_checkpoint(v.tt_dir);
  v.tt_val = device_verdicts(tt.model, {*tt.tokenizer, tt.protocol}, task, val, max_new_tokens);
  v.tt_test = has_tt ? v.dev_test["task-tuning"]
                     : device_verdicts(tt.model, {*tt.tokenizer, tt.protocol}, task, test, max_new_tokens);
  return v;
}

namespace {

AtRateRow versus_best_router(const MethodRow& row, const std::vector<FittedRouter>& routers,
                             const ComparisonData& data, const SeedVerdicts& v) {
  AtRateRow a;
  a.method = row.method;
  a.call_rate = row.call_rate();
  a.accuracy = row.accuracy();
  MethodRow best;
  bool any = false;
  for (const auto& f : routers) {
    const double threshold = f.router->calibrate(f.val_scores, a.call_rate);
    MethodRow r = routed(f.router->name(), v.tt_test, data.cloud_test, data.test,
                         f.router->decide(f.test_scores, threshold));
    if (f.router->key() == "prompt-router") {
      const eval::ConfidenceInterval ci = eval::paired_difference_ci(row.correct, r.correct);
      a.has_paper_router = true;
      a.paper_router_call_rate = r.call_rate();
      a.paper_router_accuracy = r.accuracy();
      a.paper_diff = ci.mean;
      a.paper_diff_lo = ci.lo;
      a.paper_diff_hi = ci.hi;
    }
    if (!any || r.accuracy() > best.accuracy()) best = std::move(r);
    any = true;
  }
  if (!any) return a;
  a.router = best.method;
  a.router_call_rate = best.call_rate();
  a.router_accuracy = best.accuracy();
  const eval::ConfidenceInterval ci = eval::paired_difference_ci(row.correct, best.correct);
  a.diff = ci.mean;
  a.diff_lo = ci.lo;
  a.diff_hi = ci.hi;
  return a;
}

}  // namespace

SeedComparison comparison_rows(const ComparisonData& data, const SeedVerdicts& v, const ComparisonSettings& s,
                               size_t seed_index, uint64_t seed, nlohmann::json* curves) {
  SeedComparison out;
  add_anchor_rows(data, v.tt_test, out.rows);
  const std::vector<FittedRouter> routers = add_router_rows(data, v, s, seed_index, curves, out.rows);
  for (const auto& f : routers)
    out.router_auc.push_back({f.router->name(), seed, route::roc_auc(f.val_scores, failures(v.tt_val)),
                              route::roc_auc(f.test_scores, failures(v.tt_test))});
  for (const auto& [algo, dir] : v.trained) {
    if (algo == "task-tuning") continue;
    const RlMethod& method = find_rl_method(algo);
    out.rows.push_back({algo, self_routed(method.label, v.dev_test.at(algo), data.cloud_test, data.test)});
    if (method.needs_cloud()) add_handoff_threshold_rows(data, algo, dir, s, curves, out.rows);
  }
  // Every row in which a trained model decides itself (with or without its threshold), against the best
  // router at that row's own call rate.
  for (const auto& [key, row] : out.rows) {
    const std::string algo = key.substr(0, key.find('+'));
    if (!v.trained.count(algo) || !find_rl_method(algo).needs_cloud()) continue;
    out.at_rate.push_back(versus_best_router(row, routers, data, v));
    out.at_rate.back().seed = seed;
  }
  return out;
}

std::vector<SeedSpread> seed_spread(const std::vector<KeyedRows>& rows_by_seed,
                                    const std::vector<uint64_t>& seeds) {
  std::vector<SeedSpread> spread;
  if (seeds.size() <= 1) return spread;
  for (const auto& [key, row0] : rows_by_seed[0]) {
    SeedSpread sp;
    // A threshold row's name carries the first seed's threshold; across seeds it is the method's knob.
    const size_t plus = key.find("+knob");
    sp.method = plus == std::string::npos
                    ? row0.method
                    : method_short_name(key.substr(0, plus)) + " + hand-off threshold calibrated to the rate";
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
