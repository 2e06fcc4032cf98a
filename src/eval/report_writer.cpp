#include "eval/report_writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/pure/metrics.h"
#include "eval/pure/report.h"
#include "eval/pure/svg_plot.h"

namespace handoff {

namespace {

const MethodRow* find_row(const std::vector<MethodRow>& rows, const std::string& prefix) {
  for (const auto& r : rows)
    if (r.method.rfind(prefix, 0) == 0) return &r;
  return nullptr;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (!file_exists(path)) return out;
  std::istringstream in(read_file(path));
  for (std::string l; std::getline(in, l);) {
    try {
      out.push_back(nlohmann::json::parse(l));
    } catch (const std::exception&) {
    }
  }
  return out;
}

eval::MethodResult to_result(const MethodRow& r) {
  eval::MethodResult m;
  m.method = r.method;
  m.correct = r.correct;
  m.called_cloud = r.called;
  m.difficulty = r.difficulty;
  m.device_tokens_mean = r.device_tokens;
  m.cloud_tokens_mean = r.cloud_tokens;
  m.device_ms_mean = r.device_ms;
  m.cloud_ms_mean = r.cloud_ms;
  return m;
}

// The report's head: what was compared, then the main table (eval/pure/report.h).
std::string methods_section(const ReportInputs& in, const std::vector<eval::MethodResult>& results,
                            const eval::MethodResult& dev, const eval::MethodResult& cloud) {
  std::string md = "# handoff demo report\n\nPreset `" + in.preset + "`, task `" + in.task + "`, device `" +
                   in.device_model + "`, cloud `" + in.cloud_model +
                   "` (served by `handoff serve` on 127.0.0.1).\n";
  char buf[1024];
  std::snprintf(buf, sizeof buf,
                "Target cloud-call rate %.2f (budget ρ = %.3f). Held-out test items: %zu. Accuracy with a "
                "bootstrap 95 %% interval; gap recovered = (acc − device-only) / (cloud-only − device-only). "
                "Latency split per query: device = its tokens × the model's measured batch-1 decode time per "
                "token; cloud = the measured HTTP round trips of the queries it forwards (0 for the others), "
                "averaged over all queries.\n\n",
                in.call_rate_target, in.call_rate_target / (1 - in.call_rate_target), dev.correct.size());
  std::string opts;
  for (const auto& [algo, o] : in.algo_options.items()) {
    opts += (opts.empty() ? "" : "; ") + std::string("`") + algo + "`:";
    for (const auto& [k, v] : o.items()) opts += " " + k + "=" + v.dump();
  }
  if (!opts.empty())
    md +=
        "Methods trained with options beyond the preset's rl section (`handoff demo --paper-gapg` trains "
        "without "
        "them): " +
        opts + ".\n";
  return md + buf + eval::methods_table_markdown(results, dev, cloud);
}

// Call rate per difficulty of every method: does the device call on hard items and answer easy ones?
std::string difficulty_section(const nlohmann::json& methods, const std::vector<int>& difficulty) {
  std::vector<int> diffs = difficulty;
  std::sort(diffs.begin(), diffs.end());
  diffs.erase(std::unique(diffs.begin(), diffs.end()), diffs.end());
  std::string md = "\n## Cloud-call rate by difficulty\n\n| method |";
  for (int d : diffs) md += " " + std::to_string(d) + " |";
  md += "\n|---|";
  for (size_t i = 0; i < diffs.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& m : methods) {
    md += "| " + eval::markdown_cell(m["method"].get<std::string>()) + " |";
    for (int d : diffs)
      md += " " + eval::fixed(m["by_difficulty"][std::to_string(d)]["call_rate"].get<double>(), 2) + " |";
    md += "\n";
  }
  return md;
}

std::pair<double, double> mean_sd(const std::vector<double>& x) {
  double m = 0, v = 0;
  for (double e : x) m += e;
  m /= static_cast<double>(x.size());
  for (double e : x) v += (e - m) * (e - m);
  return {m, x.size() > 1 ? std::sqrt(v / static_cast<double>(x.size() - 1)) : 0.0};
}

// Gap recovered per seed against that seed's own device-only and cloud-only rows, then averaged.
std::string seed_gap_text(const SeedSpread& sp, const std::vector<SeedSpread>& all) {
  const SeedSpread* dev = nullptr;
  const SeedSpread* cloud = nullptr;
  for (const auto& x : all) {
    if (x.method.rfind("device-only", 0) == 0) dev = &x;
    if (x.method.rfind("cloud-only", 0) == 0) cloud = &x;
  }
  std::vector<double> gaps;
  for (size_t i = 0; dev && cloud && i < sp.accuracy.size(); ++i) {
    const auto g = eval::gap_recovered(sp.accuracy[i], dev->accuracy[i], cloud->accuracy[i]);
    if (g.defined) gaps.push_back(g.value);
  }
  return gaps.empty() ? "n/a" : eval::fixed(mean_sd(gaps).first, 3);
}

// The same rows against the paper's baseline router alone (the prompt classifier, paper.md §5): the paper's
// claim is measured against it, the best-router table above adds routers the paper does not have.
std::string paper_router_section(const std::vector<AtRateRow>& rows) {
  std::string md;
  for (const auto& r : rows) {
    if (!r.has_paper_router) continue;
    const bool excludes = r.paper_diff_lo > 0 || r.paper_diff_hi < 0;
    md += "| " + eval::markdown_cell(r.method) + " | " + std::to_string(r.seed) + " | " +
          eval::fixed(r.call_rate, 3) + " | " + eval::fixed(r.accuracy, 3) + " | " +
          eval::fixed(r.paper_router_call_rate, 3) + " | " + eval::fixed(r.paper_router_accuracy, 3) + " | " +
          (r.paper_diff >= 0 ? "+" : "") + eval::fixed(r.paper_diff, 3) + " [" +
          eval::fixed(r.paper_diff_lo, 3) + ", " + eval::fixed(r.paper_diff_hi, 3) + "] | " +
          (excludes ? (r.paper_diff > 0 ? "yes (method ahead)" : "yes (router ahead)") : "no") + " |\n";
  }
  if (md.empty()) return "";
  return "\n## Against the paper's router (prompt classifier) at each method's own call rate\n\n"
         "The paper's baseline router reads the prompt only (paper.md §5); calibrated the same way. The "
         "table above also "
         "has the routers that read the device's whole solution.\n\n"
         "| method | seed | call rate | accuracy | prompt router's call rate | its accuracy | "
         "difference [95 % paired CI] | excludes 0 |\n|---|---|---|---|---|---|---|---|\n" +
         md;
}

// Each self-deciding row against the best router at its own call rate (issue 15 §2), with the paired
// interval of the difference and whether it excludes 0. Adds results["at_own_rate"].
std::string at_rate_section(const std::vector<AtRateRow>& rows, nlohmann::json& results) {
  if (rows.empty()) return "";
  std::string md =
      "\n## Against the best router at each method's own call rate\n\n"
      "Each router (not the oracle) is calibrated on validation to the method's realised test call rate and "
      "applied to test; the best of them on test is shown (favouring the routers). The difference is the "
      "method's accuracy minus that router's on the same test items, with a 95 % paired bootstrap "
      "interval.\n\n"
      "| method | seed | call rate | accuracy | best router at that rate | its call rate | its accuracy | "
      "difference [95 % paired CI] | excludes 0 |\n|---|---|---|---|---|---|---|---|---|\n";
  results["at_own_rate"] = nlohmann::json::array();
  for (const auto& r : rows) {
    const bool excludes = r.diff_lo > 0 || r.diff_hi < 0;
    md += "| " + eval::markdown_cell(r.method) + " | " + std::to_string(r.seed) + " | " +
          eval::fixed(r.call_rate, 3) + " | " + eval::fixed(r.accuracy, 3) + " | " +
          eval::markdown_cell(r.router) + " | " + eval::fixed(r.router_call_rate, 3) + " | " +
          eval::fixed(r.router_accuracy, 3) + " | " + (r.diff >= 0 ? "+" : "") + eval::fixed(r.diff, 3) +
          " [" + eval::fixed(r.diff_lo, 3) + ", " + eval::fixed(r.diff_hi, 3) + "] | " +
          (excludes ? (r.diff > 0 ? "yes (method ahead)" : "yes (router ahead)") : "no") + " |\n";
    results["at_own_rate"].push_back({{"method", r.method},
                                      {"seed", r.seed},
                                      {"call_rate", r.call_rate},
                                      {"accuracy", r.accuracy},
                                      {"router", r.router},
                                      {"router_call_rate", r.router_call_rate},
                                      {"router_accuracy", r.router_accuracy},
                                      {"difference", r.diff},
                                      {"difference_lo", r.diff_lo},
                                      {"difference_hi", r.diff_hi},
                                      {"excludes_zero", excludes}});
    if (r.has_paper_router)
      results["at_own_rate"].back()["paper_router"] = {
          {"call_rate", r.paper_router_call_rate},
          {"accuracy", r.paper_router_accuracy},
          {"difference", r.paper_diff},
          {"difference_lo", r.paper_diff_lo},
          {"difference_hi", r.paper_diff_hi},
          {"excludes_zero", r.paper_diff_lo > 0 || r.paper_diff_hi < 0}};
  }
  return md + paper_router_section(rows);
}

// Each router's ROC AUC for the task-tuned device's failures (issue 15 §3: does the prompt reveal the
// difficulty?). Adds results["router_auc"].
std::string router_auc_section(const std::vector<RouterAuc>& rows, nlohmann::json& results) {
  if (rows.empty()) return "";
  std::string md =
      "\n## How well each router predicts the task-tuned device's failures\n\n"
      "ROC AUC of the router's score for \"the task-tuned device does not answer correctly by itself\" "
      "(0.5 = no better than chance, 1 = perfect). A high AUC for the prompt router means the prompt's "
      "surface "
      "reveals the difficulty.\n\n| router | seed | AUC (validation) | AUC (test) |\n|---|---|---|---|\n";
  results["router_auc"] = nlohmann::json::array();
  auto num = [](double x) { return std::isnan(x) ? std::string("n/a") : eval::fixed(x, 3); };
  auto val = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  for (const auto& r : rows) {
    md += "| " + eval::markdown_cell(r.router) + " | " + std::to_string(r.seed) + " | " + num(r.val_auc) +
          " | " + num(r.test_auc) + " |\n";
    results["router_auc"].push_back(
        {{"router", r.router}, {"seed", r.seed}, {"val_auc", val(r.val_auc)}, {"test_auc", val(r.test_auc)}});
  }
  return md;
}

// GAPG trained at other target rates, each deciding itself (issue 15 §2): does the realised rate follow the
// target, and where do the points sit against the routers' curves? Adds results["gapg_rate_sweep"].
std::string rate_sweep_section(const std::vector<std::pair<double, MethodRow>>& points,
                               nlohmann::json& results) {
  if (points.empty()) return "";
  std::string md =
      "\n## GAPG trained at other target call rates\n\n"
      "The same recipe and seed as the main GAPG row, trained with --max-call-rate r, deciding itself "
      "(greedy, "
      "no threshold) on the same test items; plotted as points over the routers' curves.\n\n"
      "| target r | realised call rate | accuracy [95 % CI] |\n|---|---|---|\n";
  results["gapg_rate_sweep"] = nlohmann::json::array();
  for (const auto& [r, row] : points) {
    const auto ci = eval::accuracy_ci(to_result(row));
    md += "| " + eval::fixed(r, 2) + " | " + eval::fixed(row.call_rate(), 3) + " | " +
          eval::fixed(row.accuracy(), 3) + " [" + eval::fixed(ci.lo, 3) + ", " + eval::fixed(ci.hi, 3) +
          "] |\n";
    results["gapg_rate_sweep"].push_back({{"target", r},
                                          {"call_rate", row.call_rate()},
                                          {"accuracy", row.accuracy()},
                                          {"ci95", {ci.lo, ci.hi}}});
  }
  return md;
}

// With several RL seeds: how much each row moves with the seed (the RL runs, and the task-tuned model the
// routers are built on). Sample standard deviation across seeds. Adds results["seeds"].
std::string seed_section(const std::vector<SeedSpread>& spread, nlohmann::json& results) {
  if (spread.empty()) return "";
  std::string seed_list;
  for (uint64_t sd : spread.front().seeds) seed_list += (seed_list.empty() ? "" : ", ") + std::to_string(sd);
  std::string md =
      "\n## Across RL seeds (" + seed_list +
      ")\n\nEvery RL method retrained per seed; the routers are refit on each seed's task-tuned "
      "model. Mean ± sample standard deviation over seeds; the table above is the first seed.\n\n"
      "| method | accuracy | cloud-call rate | gap recovered | per seed: accuracy @ call rate |\n"
      "|---|---|---|---|---|\n";
  results["seeds"] = nlohmann::json::array();
  for (const auto& sp : spread) {
    const auto [am, asd] = mean_sd(sp.accuracy);
    const auto [cm, csd] = mean_sd(sp.call_rate);
    std::string per;
    for (size_t i = 0; i < sp.accuracy.size(); ++i)
      per += (i ? ", " : "") + eval::fixed(sp.accuracy[i], 3) + " @ " + eval::fixed(sp.call_rate[i], 2);
    md += "| " + eval::markdown_cell(sp.method) + " | " + eval::fixed(am, 3) + " ± " + eval::fixed(asd, 3) +
          " | " + eval::fixed(cm, 3) + " ± " + eval::fixed(csd, 3) + " | " + seed_gap_text(sp, spread) +
          " | " + per + " |\n";
    results["seeds"].push_back({{"method", sp.method},
                                {"seeds", sp.seeds},
                                {"accuracy", sp.accuracy},
                                {"call_rate", sp.call_rate},
                                {"accuracy_mean", am},
                                {"accuracy_sd", asd},
                                {"call_rate_mean", cm},
                                {"call_rate_sd", csd}});
  }
  return md;
}

// Accuracy vs call rate: every method as a point with its interval, router sweeps as curves.
std::string accuracy_plot(const ReportInputs& in, const nlohmann::json& methods, const std::string& out_dir) {
  eval::PlotSpec acc;
  acc.title = "Accuracy vs cloud-call rate (held-out test)";
  acc.x_label = "cloud-call rate";
  acc.y_label = "accuracy";
  for (auto it = in.curves.begin(); it != in.curves.end(); ++it) {
    eval::Series s;
    s.name = it.key() + " (sweep)";
    for (const auto& p : it.value()) {
      s.x.push_back(p["call_rate"].get<double>());
      s.y.push_back(p["accuracy"].get<double>());
    }
    acc.series.push_back(s);
  }
  for (const auto& m : methods) {
    eval::Series pt;
    pt.name = m["method"].get<std::string>();
    pt.x = {m["call_rate"].get<double>()};
    pt.y = {m["accuracy"].get<double>()};
    pt.y_lo = {m["ci95"][0].get<double>()};
    pt.y_hi = {m["ci95"][1].get<double>()};
    pt.lines = false;
    acc.series.push_back(pt);
  }
  if (!in.gapg_by_rate.empty()) {
    eval::Series pts;
    pts.name = "GAPG trained at each target rate (own decisions)";
    pts.lines = false;
    for (const auto& [r, row] : in.gapg_by_rate) {
      const eval::MethodResult res = to_result(row);
      const auto ci = eval::accuracy_ci(res);
      pts.x.push_back(row.call_rate());
      pts.y.push_back(row.accuracy());
      pts.y_lo.push_back(ci.lo);
      pts.y_hi.push_back(ci.hi);
    }
    acc.series.push_back(pts);
  }
  write_file_atomic(out_dir + "/accuracy_vs_call_rate.svg", eval::line_plot(acc));
  return "\n![accuracy vs call rate](accuracy_vs_call_rate.svg)\n";
}

// Training curves from each RL run's metrics.jsonl: sampled call rate vs the budget, reward, and GAPG's
// kept-prompt fraction and local accuracy.
std::string training_plots(const ReportInputs& in, const std::string& out_dir) {
  eval::PlotSpec calls, reward, kept;
  calls.title = "Sampled hand-off rate during RL";
  calls.x_label = reward.x_label = kept.x_label = "RL step";
  calls.y_label = "hand-off rate (sampled)";
  calls.hline = eval::ReferenceLine{in.call_rate_target, "budget"};
  reward.title = "Mean reward during RL";
  reward.y_label = "reward (mean of samples)";
  kept.title = "GAPG: kept-prompt fraction and local accuracy";
  kept.y_label = "fraction";
  for (const auto& [algo, path] : in.metrics_files) {
    eval::Series c, r, kf, acc_l;
    c.name = r.name = algo;
    kf.name = "kept fraction";
    acc_l.name = "local accuracy (sampled)";
    for (const auto& l : read_jsonl(path)) {
      const double step = l.value("step", 0.0);
      c.x.push_back(step);
      c.y.push_back(l.value("call_rate", 0.0));
      r.x.push_back(step);
      r.y.push_back(l.value("reward_mean", 0.0));
      kf.x.push_back(step);
      kf.y.push_back(l.value("kept_fraction", 0.0));
      acc_l.x.push_back(step);
      acc_l.y.push_back(l.value("acc_local", 0.0));
    }
    calls.series.push_back(c);
    reward.series.push_back(r);
    if (algo == "gapg") kept.series.insert(kept.series.end(), {kf, acc_l});
  }
  write_file_atomic(out_dir + "/training_call_rate.svg", eval::line_plot(calls));
  write_file_atomic(out_dir + "/training_reward.svg", eval::line_plot(reward));
  write_file_atomic(out_dir + "/training_gapg.svg", eval::line_plot(kept));
  return "\n## Training curves\n\n![call rate](training_call_rate.svg)\n\n![reward](training_reward.svg)\n\n"
         "![GAPG](training_gapg.svg)\n";
}

std::string times_section(const nlohmann::json& times) {
  std::string md = "\n## Wall time per stage (s)\n\n| stage | seconds |\n|---|---|\n";
  for (auto it = times.begin(); it != times.end(); ++it)
    md += "| " + eval::markdown_cell(it.key()) + " | " + eval::fixed(it.value().get<double>(), 1) + " |\n";
  return md;
}

}  // namespace

void write_report(const ReportInputs& in, const std::string& out_dir) {
  const MethodRow* dev = find_row(in.rows, "device-only");
  const MethodRow* cld = find_row(in.rows, "cloud-only");
  if (!dev || !cld) throw Error("write_report: the device-only and cloud-only rows are required");
  std::vector<eval::MethodResult> results;
  for (const auto& r : in.rows) results.push_back(to_result(r));
  const eval::MethodResult dev_result = to_result(*dev), cloud_result = to_result(*cld);

  nlohmann::json json = {{"preset", in.preset},
                         {"task", in.task},
                         {"device_model", in.device_model},
                         {"cloud_model", in.cloud_model},
                         {"call_rate_target", in.call_rate_target},
                         {"stage_seconds", in.times},
                         {"methods", eval::methods_json(results, dev_result, cloud_result)},
                         {"router_curves", in.curves},
                         {"algo_options", in.algo_options}};
  std::string md = methods_section(in, results, dev_result, cloud_result);
  md += at_rate_section(in.at_rate, json);
  md += router_auc_section(in.router_auc, json);
  md += rate_sweep_section(in.gapg_by_rate, json);
  md += difficulty_section(json["methods"], dev->difficulty);
  md += seed_section(in.seed_spread, json);
  md += accuracy_plot(in, json["methods"], out_dir);
  md += training_plots(in, out_dir);
  md += times_section(in.times);
  write_file_atomic(out_dir + "/results.json", json.dump(2) + "\n");
  write_file_atomic(out_dir + "/report.md", md);
}

}  // namespace handoff
