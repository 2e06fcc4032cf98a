#include "eval/report_writer.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/pure/bootstrap.h"
#include "eval/pure/metrics.h"
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

}  // namespace

void write_report(const ReportInputs& in, const std::string& out_dir) {
  const MethodRow* dev = find_row(in.rows, "device-only");
  const MethodRow* cld = find_row(in.rows, "cloud-only");
  if (!dev || !cld) throw Error("write_report: the device-only and cloud-only rows are required");
  const double a_dev = dev->accuracy(), a_cloud = cld->accuracy();

  nlohmann::json results = {{"preset", in.preset},
                            {"task", in.task},
                            {"device_model", in.device_model},
                            {"cloud_model", in.cloud_model},
                            {"call_rate_target", in.call_rate_target},
                            {"stage_seconds", in.times},
                            {"methods", nlohmann::json::array()},
                            {"router_curves", in.curves}};
  std::string md = "# handoff demo report\n\nPreset `" + in.preset + "`, task `" + in.task + "`, device `" +
                   in.device_model + "`, cloud `" + in.cloud_model +
                   "` (served by `handoff serve` on 127.0.0.1).\n";
  char buf[1024];
  std::snprintf(
      buf, sizeof buf,
      "Target cloud-call rate %.2f (budget ρ = %.3f). Held-out test items: %zu. Accuracy with a "
      "bootstrap 95 %% "
      "interval; gap recovered = (acc − device-only) / (cloud-only − device-only). Latency split per "
      "query: device = its tokens × the model's measured batch-1 decode time per token; cloud = the "
      "measured HTTP round trips of the queries it forwards (0 for the others), averaged over all "
      "queries.\n\n",
      in.call_rate_target, in.call_rate_target / (1 - in.call_rate_target), dev->correct.size());
  md += buf;
  md +=
      "| method | accuracy | 95 % CI | cloud-call rate | gap recovered | device tokens/query | cloud "
      "tokens/query | device ms/query | cloud ms/query |\n";
  md += "|---|---|---|---|---|---|---|---|---|\n";
  std::vector<eval::Series> method_points;
  for (const auto& r : in.rows) {
    const auto ci = eval::bootstrap_mean_ci(r.correct);
    const double lo = ci.lo, hi = ci.hi;
    const auto g = eval::gap_recovered(r.accuracy(), a_dev, a_cloud);
    const double rec = g.defined ? g.value : std::nan("");
    std::snprintf(buf, sizeof buf, "| %s | %.3f | [%.3f, %.3f] | %.3f | %s | %.1f | %.1f | %.1f | %.1f |\n",
                  r.method.c_str(), r.accuracy(), lo, hi, r.call_rate(),
                  std::isnan(rec) ? "n/a" : (std::to_string(rec).substr(0, 5)).c_str(), r.device_tokens,
                  r.cloud_tokens, r.device_ms, r.cloud_ms);
    md += buf;
    nlohmann::json per_diff = nlohmann::json::object();
    std::map<int, std::pair<double, double>> acc_by_d, call_by_d;
    std::map<int, int> n_by_d;
    for (size_t i = 0; i < r.correct.size(); ++i) {
      acc_by_d[r.difficulty[i]].first += r.correct[i];
      call_by_d[r.difficulty[i]].first += r.called[i];
      ++n_by_d[r.difficulty[i]];
    }
    for (auto& [d, n] : n_by_d)
      per_diff[std::to_string(d)] = {{"accuracy", acc_by_d[d].first / n},
                                     {"call_rate", call_by_d[d].first / n}};
    results["methods"].push_back(
        {{"method", r.method},
         {"accuracy", r.accuracy()},
         {"ci95", {lo, hi}},
         {"call_rate", r.call_rate()},
         {"gap_recovered", std::isnan(rec) ? nlohmann::json(nullptr) : nlohmann::json(rec)},
         {"device_tokens_per_query", r.device_tokens},
         {"cloud_tokens_per_query", r.cloud_tokens},
         {"device_ms_per_query", r.device_ms},
         {"cloud_ms_per_query", r.cloud_ms},
         {"by_difficulty", per_diff}});
    eval::Series pt;
    pt.name = r.method;
    pt.x = {r.call_rate()};
    pt.y = {r.accuracy()};
    pt.y_lo = {lo};
    pt.y_hi = {hi};
    pt.lines = false;
    method_points.push_back(pt);
  }
  // Call rate per difficulty of the self-routing methods: does the device call on hard items and answer easy
  // ones?
  md += "\n## Cloud-call rate by difficulty\n\n| method |";
  std::vector<int> diffs;
  for (int d : dev->difficulty)
    if (std::find(diffs.begin(), diffs.end(), d) == diffs.end()) diffs.push_back(d);
  std::sort(diffs.begin(), diffs.end());
  for (int d : diffs) md += " " + std::to_string(d) + " |";
  md += "\n|---|";
  for (size_t i = 0; i < diffs.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& m : results["methods"]) {
    md += "| " + m["method"].get<std::string>() + " |";
    for (int d : diffs) {
      std::snprintf(buf, sizeof buf, " %.2f |",
                    m["by_difficulty"][std::to_string(d)]["call_rate"].get<double>());
      md += buf;
    }
    md += "\n";
  }

  // With several RL seeds: how much each row moves with the seed (the RL runs, and the task-tuned model the
  // routers are built on). Sample standard deviation across seeds.
  if (!in.seed_spread.empty()) {
    auto mean_sd = [](const std::vector<double>& x) {
      double m = 0, v = 0;
      for (double e : x) m += e;
      m /= static_cast<double>(x.size());
      for (double e : x) v += (e - m) * (e - m);
      const double sd = x.size() > 1 ? std::sqrt(v / static_cast<double>(x.size() - 1)) : 0.0;
      return std::make_pair(m, sd);
    };
    std::string seed_list;
    for (uint64_t sd : in.seed_spread.front().seeds)
      seed_list += (seed_list.empty() ? "" : ", ") + std::to_string(sd);
    md += "\n## Across RL seeds (" + seed_list +
          ")\n\nEvery RL method retrained per seed; the routers are refit on each seed's task-tuned model. "
          "Mean ± sample standard deviation over seeds; the table above is the first seed.\n\n"
          "| method | accuracy | cloud-call rate | gap recovered | per seed: accuracy @ call rate |\n"
          "|---|---|---|---|---|\n";
    results["seeds"] = nlohmann::json::array();
    for (const auto& sp : in.seed_spread) {
      const auto [am, asd] = mean_sd(sp.accuracy);
      const auto [cm, csd] = mean_sd(sp.call_rate);
      // Gap recovered per seed against that seed's own device-only and cloud-only rows, then averaged.
      const SeedSpread* sd_dev = nullptr;
      const SeedSpread* sd_cloud = nullptr;
      for (const auto& x : in.seed_spread) {
        if (x.method.rfind("device-only", 0) == 0) sd_dev = &x;
        if (x.method.rfind("cloud-only", 0) == 0) sd_cloud = &x;
      }
      std::vector<double> gaps;
      for (size_t i = 0; sd_dev && sd_cloud && i < sp.accuracy.size(); ++i) {
        const auto gi = eval::gap_recovered(sp.accuracy[i], sd_dev->accuracy[i], sd_cloud->accuracy[i]);
        if (gi.defined) gaps.push_back(gi.value);
      }
      std::string per;
      for (size_t i = 0; i < sp.accuracy.size(); ++i) {
        std::snprintf(buf, sizeof buf, "%s%.3f @ %.2f", i ? ", " : "", sp.accuracy[i], sp.call_rate[i]);
        per += buf;
      }
      std::snprintf(
          buf, sizeof buf, "| %s | %.3f ± %.3f | %.3f ± %.3f | %s | %s |\n", sp.method.c_str(), am, asd, cm,
          csd, gaps.empty() ? "n/a" : std::to_string(mean_sd(gaps).first).substr(0, 5).c_str(), per.c_str());
      md += buf;
      results["seeds"].push_back({{"method", sp.method},
                                  {"seeds", sp.seeds},
                                  {"accuracy", sp.accuracy},
                                  {"call_rate", sp.call_rate},
                                  {"accuracy_mean", am},
                                  {"accuracy_sd", asd},
                                  {"call_rate_mean", cm},
                                  {"call_rate_sd", csd}});
    }
  }

  // Plot 1: accuracy vs call rate, every method as a point, router sweeps as curves.
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
  for (auto& s : method_points) acc.series.push_back(s);
  write_file_atomic(out_dir + "/accuracy_vs_call_rate.svg", eval::line_plot(acc));
  md += "\n![accuracy vs call rate](accuracy_vs_call_rate.svg)\n";

  // Plot 2–3: training curves (sampled call rate vs budget, reward).
  eval::PlotSpec calls, reward;
  calls.title = "Sampled hand-off rate during RL";
  calls.x_label = reward.x_label = "RL step";
  calls.y_label = "hand-off rate (sampled)";
  calls.hline = eval::ReferenceLine{in.call_rate_target, "budget"};
  reward.title = "Mean reward during RL";
  reward.y_label = "reward (mean of samples)";
  eval::PlotSpec kept;
  kept.title = "GAPG: kept-prompt fraction and local accuracy";
  kept.x_label = "RL step";
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
      if (algo == "gapg") {
        kf.x.push_back(step);
        kf.y.push_back(l.value("kept_fraction", 0.0));
        acc_l.x.push_back(step);
        acc_l.y.push_back(l.value("acc_local", 0.0));
      }
    }
    calls.series.push_back(c);
    reward.series.push_back(r);
    if (algo == "gapg") {
      kept.series.push_back(kf);
      kept.series.push_back(acc_l);
    }
  }
  write_file_atomic(out_dir + "/training_call_rate.svg", eval::line_plot(calls));
  write_file_atomic(out_dir + "/training_reward.svg", eval::line_plot(reward));
  write_file_atomic(out_dir + "/training_gapg.svg", eval::line_plot(kept));
  md +=
      "\n## Training curves\n\n![call rate](training_call_rate.svg)\n\n![reward](training_reward.svg)\n\n"
      "![GAPG](training_gapg.svg)\n\n## Wall time per stage (s)\n\n| stage | seconds |\n|---|---|\n";
  for (auto it = in.times.begin(); it != in.times.end(); ++it) {
    std::snprintf(buf, sizeof buf, "| %s | %.1f |\n", it.key().c_str(), it.value().get<double>());
    md += buf;
  }
  write_file_atomic(out_dir + "/results.json", results.dump(2) + "\n");
  write_file_atomic(out_dir + "/report.md", md);
}

}  // namespace handoff
