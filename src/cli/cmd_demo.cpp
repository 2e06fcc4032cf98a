// `handoff demo`: the whole mission on the embedded default, stage by stage, into one run directory.
//   1 base models (reference checkpoints, or SFT from scratch) → 2 `handoff serve` of the cloud model as a
//   child process on 127.0.0.1 → 3 RL of every method (GAPG and the RL baselines) → 4 device and cloud
//   verdicts on the validation and held-out test sets (cloud through HTTP, cached) → 5 routers calibrated on
//   validation → 6 results.json + report.md. Finished stages are reused on a re-run; --fresh starts over.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/preset.h"
#include "cloud/serve_process.h"
#include "common/atomic_file.h"
#include "common/child_process.h"
#include "common/error.h"
#include "eval/eval_set.h"
#include "eval/methods_eval.h"
#include "eval/pure/calibration.h"
#include "eval/report_writer.h"
#include "io/checkpoint.h"
#include "rl/pure/budget.h"
#include "rl/rl_trainer.h"
#include "rl/sft.h"
#include "route/features.h"
#include "route/linear_probe.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace fs = std::filesystem;

namespace {

struct DemoArgs {
  std::string preset = "quick", out = "runs/demo";
  bool fresh = false, from_scratch = false;
  int threads = 0, jobs = 0;
};

class Stages {
 public:
  explicit Stages(int n) : n_(n), t0_(std::chrono::steady_clock::now()) {}
  void begin(const std::string& what) {
    ++k_;
    std::fprintf(stderr, "\n== stage %d/%d: %s (%.0f s elapsed)\n", k_, n_, what.c_str(), elapsed());
    ts_ = std::chrono::steady_clock::now();
  }
  void end(nlohmann::json& times, const std::string& key) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts_).count();
    times[key] = s;
    std::fprintf(stderr, "   done in %.1f s\n", s);
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  int n_, k_ = 0;
  std::chrono::steady_clock::time_point t0_, ts_;
};

std::string source_path(const std::string& rel) {
#ifdef HANDOFF_SOURCE_DIR
  if (file_exists(std::string(HANDOFF_SOURCE_DIR) + "/" + rel))
    return std::string(HANDOFF_SOURCE_DIR) + "/" + rel;
#endif
  return rel;
}

bool rl_finished(const std::string& dir, int64_t steps) {
  const auto st = dir + "/model/trainer_state.json";
  if (!file_exists(st)) return false;
  return nlohmann::json::parse(read_file(st)).value("step", int64_t{0}) >= steps;
}

// One line of a job's metrics.jsonl, for the combined progress line.
std::string progress_of(const std::string& name, const std::string& metrics, int64_t steps) {
  if (!file_exists(metrics)) return name + " starting";
  const std::string text = read_file(metrics);
  const size_t end = text.find_last_not_of('\n');
  if (end == std::string::npos) return name + " starting";
  const size_t begin = text.rfind('\n', end);
  try {
    auto j = nlohmann::json::parse(text.substr(begin == std::string::npos ? 0 : begin + 1, end + 1));
    char buf[160];
    if (j.contains("reward_mean")) {
      std::snprintf(buf, sizeof buf, "%s %lld/%lld r %.2f call %.2f", name.c_str(),
                    static_cast<long long>(j.value("step", int64_t{0})), static_cast<long long>(steps),
                    j.value("reward_mean", 0.0), j.value("call_rate", 0.0));
    } else {
      std::snprintf(buf, sizeof buf, "%s %lld/%lld loss %.3f", name.c_str(),
                    static_cast<long long>(j.value("step", int64_t{0})), static_cast<long long>(steps),
                    j.value("loss", 0.0));
    }
    return buf;
  } catch (const std::exception&) {
    return name + " running";  // a line being written
  }
}

// A `handoff` subcommand run as a child process (its output in `log`, its progress in `metrics`).
struct ChildJob {
  std::string name;
  std::vector<std::string> args;
  std::string log, metrics;
  int64_t steps = 0;
};

// Runs the jobs `parallel` at a time, each with one compute thread: tiny models do not scale across cores
// within one process (OpenMP spinning), but do across processes. A failed job stops the demo with its log.
void run_side_by_side(const std::vector<ChildJob>& jobs, int parallel) {
  struct Running {
    const ChildJob* job;
    std::unique_ptr<ChildProcess> proc;
  };
  std::vector<Running> running;
  size_t next = 0, done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double last_print = -1e9;
  while (next < jobs.size() || !running.empty()) {
    while (next < jobs.size() && static_cast<int>(running.size()) < std::max(1, parallel)) {
      const ChildJob& j = jobs[next++];
      std::fprintf(stderr, "   --- %s (%lld steps), log %s\n", j.name.c_str(),
                   static_cast<long long>(j.steps), j.log.c_str());
      running.push_back({&j, std::make_unique<ChildProcess>(j.args, j.log)});
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));
    std::string line;
    for (auto it = running.begin(); it != running.end();) {
      if (it->proc->running()) {
        line += (line.empty() ? "" : " | ") + progress_of(it->job->name, it->job->metrics, it->job->steps);
        ++it;
        continue;
      }
      if (it->proc->exit_code() != 0)
        throw Error(it->job->name + " failed (exit " + std::to_string(it->proc->exit_code()) + ")",
                    "see " + it->job->log + "; rerun `handoff demo` to resume");
      ++done;
      std::fprintf(stderr, "   %s finished (%zu/%zu)\n", it->job->name.c_str(), done, jobs.size());
      it = running.erase(it);
    }
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!line.empty() && el - last_print >= 15) {  // a line every 15 s: readable in a terminal and a log
      std::fprintf(stderr, "   [%4.0f s] %s\n", el, line.c_str());
      last_print = el;
    }
  }
}

// A reference checkpoint that is missing, corrupt, or whose tokenizer cannot write the task's problems and
// solutions: an error naming the directory and what to run, before any stage starts (not a crash mid-run).
void check_reference_checkpoint(const std::string& ref, const Task& task) {
  const std::string hint =
      "run scripts/reproduce-models.sh to retrain models/, or `handoff demo --from-scratch`";
  if (!file_exists(ref + "/model.safetensors"))
    throw Error("reference checkpoint " + ref + " is missing or incomplete", hint);
  LoadedModel m;
  try {
    m = load_checkpoint(ref);  // config, weights and tokenizer
  } catch (const Error& e) {
    throw Error("reference checkpoint " + ref + " is unusable: " + e.what(), hint);
  }
  std::mt19937_64 rng(1);
  for (int d = task.min_difficulty(); d <= task.max_difficulty(); ++d) {
    const Problem p = task.sample(rng, d, Split::kTest);
    try {
      m.tokenizer->encode_query(p.prompt);
      m.tokenizer->encode(task.solution(p));
    } catch (const Error& e) {
      throw Error("reference checkpoint " + ref + ": its tokenizer cannot write the task '" + task.name() +
                      "': " + e.what(),
                  hint);
    }
  }
}

// The device and cloud base models: the reference checkpoints, or (--from-scratch) both trained by SFT side
// by side as `handoff sft` children. Returns {device_dir, cloud_dir}.
std::pair<std::string, std::string> base_models(const nlohmann::json& demo, const nlohmann::json& preset,
                                                const DemoArgs& a, const std::string& task, int parallel) {
  const bool scratch = a.from_scratch || demo.value("from_scratch", false);
  if (!scratch) {
    std::vector<std::string> dirs;
    for (const std::string role : {"device", "cloud"}) {
      const std::string ref = source_path(demo.at(role + "_model").get<std::string>());
      check_reference_checkpoint(ref, *make_task(task));
      dirs.push_back(ref);
    }
    return {dirs[0], dirs[1]};
  }
  std::vector<ChildJob> jobs;
  for (const std::string role : {"device", "cloud"}) {
    const std::string out = a.out + "/base-" + role;
    auto opts = SftOptions::from_json(preset.at(role).at("sft"), "preset/" + role + "/sft");
    make_dirs(out);
    jobs.push_back({"sft " + role,
                    {"sft", "--role", role, "--preset", a.preset, "--task", task, "--out", out, "--resume",
                     "--threads", "1"},
                    out + "/sft.log",
                    out + "/metrics.jsonl",
                    opts.stop_at_step > 0 ? std::min(opts.steps, opts.stop_at_step) : opts.steps});
  }
  run_side_by_side(jobs, parallel);
  return {a.out + "/base-device/model", a.out + "/base-cloud/model"};
}

// One RL run of the demo: a method at one seed, in its own directory.
struct RlRun {
  std::string algo;
  uint64_t seed = 1;
  std::string dir;
};

// The first seed keeps the plain layout (rl-ALGO), so single-seed runs and reports look as before.
std::string rl_dir(const std::string& out, const std::string& algo, uint64_t seed, bool first) {
  return out + "/rl-" + algo + (first ? "" : "-seed" + std::to_string(seed));
}

// Each run is `handoff train --options …` in its own process. Each keeps its own cloud answer cache (one
// writer per file).
void run_rl_methods(const std::vector<RlRun>& runs, const RlOptions& base, const std::string& device_dir,
                    int parallel) {
  std::vector<ChildJob> jobs;
  for (const auto& run : runs) {
    RlOptions o = base;
    o.algo = run.algo;
    o.seed = run.seed;
    o.quiet = true;
    make_dirs(run.dir);
    write_file_atomic(run.dir + "/options.json", o.to_json().dump(2) + "\n");
    jobs.push_back({fs::path(run.dir).filename().string(),
                    {"train", "--options", run.dir + "/options.json", "--device", device_dir, "--out",
                     run.dir, "--resume", "--threads", "1", "--cloud", base.cloud_url, "--cloud-cache",
                     run.dir + "-cloud_cache.jsonl"},
                    run.dir + "/train.log",
                    run.dir + "/metrics.jsonl",
                    base.steps});
  }
  run_side_by_side(jobs, parallel);
}

}  // namespace

void register_demo(CLI::App& app) {
  auto a = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand("demo", "Run the whole mission on the embedded default and write a report");
  cmd->add_option("--preset", a->preset,
                  "quick (≤ 15 min from reference models) | full | micro (seconds, tests)")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Run directory")->capture_default_str();
  cmd->add_flag("--fresh", a->fresh, "Delete the run directory first");
  cmd->add_flag("--from-scratch", a->from_scratch, "Train the base models too instead of using models/");
  cmd->add_option("--threads", a->threads, "Compute threads (0 = all cores)");
  cmd->add_option(
         "--jobs", a->jobs,
         "Base models and RL methods trained side by side, one core each (default: the preset's demo.jobs)")
      ->check(CLI::Range(1, 64));
  cmd->callback([a] {
    configure_threads(a->threads);
    auto preset = load_preset(a->preset);
    if (!preset.contains("demo")) throw Error("preset '" + a->preset + "' has no 'demo' section");
    const auto& demo = preset["demo"];
    const std::string task_name = preset.value("task", std::string("chain"));
    auto task = make_task(task_name);
    if (a->fresh) fs::remove_all(a->out);
    make_dirs(a->out);
    nlohmann::json times = nlohmann::json::object();
    Stages stages(6);

    stages.begin("base models");
    const int parallel = a->jobs > 0 ? a->jobs : demo.value("jobs", 1);
    const auto [device_dir, cloud_dir] = base_models(demo, preset, *a, task_name, parallel);
    std::fprintf(stderr, "   device %s, cloud %s\n", device_dir.c_str(), cloud_dir.c_str());
    stages.end(times, "base_models");

    stages.begin("cloud server (handoff serve, child process on 127.0.0.1)");
    ServeProcess server({"--model", cloud_dir, "--model-name", "cloud", "--threads", "1"},
                        a->out + "/serve.log");
    const std::string cloud_url = server.url() + "/v1";
    std::fprintf(stderr, "   cloud at %s (pid %d)\n", cloud_url.c_str(), static_cast<int>(server.pid()));
    stages.end(times, "serve");

    const double rate = demo.value("max_call_rate", 0.3);
    RlOptions base = preset.contains("rl") ? RlOptions::from_json(preset["rl"], "preset/rl") : RlOptions{};
    base.task = task_name;
    base.budget = budget_from_call_rate(rate);
    base.cloud_url = cloud_url;
    base.cloud_model = "cloud";
    base.cloud_cache = a->out + "/cloud_cache.jsonl";
    // RL seeds (preset demo.seeds; default the rl section's seed): every method is trained once per seed.
    // The main table is the first seed's; with more seeds the report adds their spread.
    std::vector<uint64_t> seeds = demo.value("seeds", std::vector<uint64_t>{base.seed});
    if (seeds.empty()) throw Error("preset '" + a->preset + "': demo.seeds is empty");
    stages.begin("RL post-training of every method");
    std::vector<std::map<std::string, std::string>> trained_by_seed(seeds.size());  // algo → model dir
    std::vector<RlRun> todo;
    for (size_t si = 0; si < seeds.size(); ++si)
      for (const auto& algo : demo.at("algos").get<std::vector<std::string>>()) {
        const std::string dir = rl_dir(a->out, algo, seeds[si], si == 0);
        trained_by_seed[si][algo] = dir + "/model";
        if (rl_finished(dir, base.steps)) {
          std::fprintf(stderr, "   --- %s: finished earlier, reused\n", fs::path(dir).filename().c_str());
        } else {
          todo.push_back({algo, seeds[si], dir});
        }
      }
    run_rl_methods(todo, base, device_dir, parallel);
    const std::map<std::string, std::string>& trained = trained_by_seed[0];
    stages.end(times, "rl");

    stages.begin("verdicts on the validation and held-out test sets");
    const std::vector<int> diffs = resolve_difficulties(*task, base.difficulties);
    const int64_t n_test = demo.value("test_per_difficulty", 50),
                  n_val = demo.value("val_per_difficulty", 50);
    auto test = make_eval_set(*task, diffs, n_test, 20261123, Split::kTest);
    auto val = make_eval_set(*task, diffs, n_val, 777, Split::kTrain);
    CloudClientOptions co;
    co.base_url = cloud_url;
    co.model = "cloud";
    CloudClient client(co);
    CloudAnswerCache cache(client, a->out + "/cloud_cache.jsonl");
    auto cloud_test = cloud_verdicts(cache, *task, test), cloud_val = cloud_verdicts(cache, *task, val);
    const int64_t max_new = base.max_new_tokens;
    // Per seed: every trained model's greedy verdicts on test, and the task-tuned model's on validation
    // (the routers are trained and calibrated on it).
    struct SeedVerdicts {
      std::map<std::string, DeviceVerdicts> dev_test;
      std::string tt_dir;
      DeviceVerdicts tt_val, tt_test;
    };
    std::vector<SeedVerdicts> verdicts(seeds.size());
    for (size_t si = 0; si < seeds.size(); ++si) {
      auto& v = verdicts[si];
      for (const auto& [algo, dir] : trained_by_seed[si]) {
        auto m = load_checkpoint(dir);
        v.dev_test[algo] = device_verdicts(m.model, *m.tokenizer, *task, test, max_new);
      }
      const bool has_tt = trained_by_seed[si].count("task-tuning") > 0;
      v.tt_dir = has_tt ? trained_by_seed[si].at("task-tuning") : device_dir;
      auto tt = load_checkpoint(v.tt_dir);
      v.tt_val = device_verdicts(tt.model, *tt.tokenizer, *task, val, max_new);
      v.tt_test =
          has_tt ? v.dev_test["task-tuning"] : device_verdicts(tt.model, *tt.tokenizer, *task, test, max_new);
    }
    stages.end(times, "verdicts");

    stages.begin("baselines and routers (calibrated on validation to the call rate)");
    // Every method's row for one seed's models, keyed by a name that does not change across seeds. `curves`
    // (the sweeps for the plot) only for the main seed.
    auto seed_rows = [&](size_t si, nlohmann::json* curves) {
      std::vector<std::pair<std::string, MethodRow>> out;
      const SeedVerdicts& v = verdicts[si];
      const DeviceVerdicts& tt_test = v.tt_test;
      const DeviceVerdicts& tt_val = v.tt_val;
      auto tt = load_checkpoint(v.tt_dir);
      std::vector<uint8_t> none(test.size(), 0), all(test.size(), 1);
      {
        DeviceVerdicts no_handoff = tt_test;
        std::fill(no_handoff.handoff.begin(), no_handoff.handoff.end(),
                  0);  // a hand-off it emits is simply wrong
        out.push_back(
            {"device-only", routed("device-only (task-tuned)", no_handoff, cloud_test, test, none)});
        out.push_back({"cloud-only", routed("cloud-only", no_handoff, cloud_test, test, all)});
        out.back().second.device_tokens = 0;  // cloud-only never runs the device
        out.back().second.device_ms = 0;
      }
      std::mt19937_64 rng(5 + si);
      std::vector<double> rnd_val(val.size()), rnd_test(test.size());
      for (auto& x : rnd_val) x = std::uniform_real_distribution<double>(0, 1)(rng);
      for (auto& x : rnd_test) x = std::uniform_real_distribution<double>(0, 1)(rng);
      // Prompt router: frozen task-tuned device features + logistic head, trained to predict its failures.
      std::vector<std::string> val_q, test_q;
      for (const auto& p : val) val_q.push_back(p.prompt);
      for (const auto& p : test) test_q.push_back(p.prompt);
      auto fail_labels =
          torch::tensor(std::vector<float>(tt_val.local_correct.begin(), tt_val.local_correct.end()));
      fail_labels = 1 - fail_labels;
      LinearProbe prompt_probe, post_probe;
      prompt_probe.fit(pooled_features(tt.model, *tt.tokenizer, val_q), fail_labels);
      post_probe.fit(pooled_features(tt.model, *tt.tokenizer, val_q, tt_val.text), fail_labels);
      auto to_vec = [](const at::Tensor& t) {
        return std::vector<double>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
      };
      auto pr_val = to_vec(prompt_probe.predict(pooled_features(tt.model, *tt.tokenizer, val_q)));
      auto pr_test = to_vec(prompt_probe.predict(pooled_features(tt.model, *tt.tokenizer, test_q)));
      auto po_val = to_vec(post_probe.predict(pooled_features(tt.model, *tt.tokenizer, val_q, tt_val.text)));
      auto po_test =
          to_vec(post_probe.predict(pooled_features(tt.model, *tt.tokenizer, test_q, tt_test.text)));
      std::vector<double> conf_val, conf_test;
      for (float x : tt_val.mean_logprob) conf_val.push_back(-x);
      for (float x : tt_test.mean_logprob) conf_test.push_back(-x);
      struct Router {
        std::string key, name;
        const std::vector<double>* val;
        const std::vector<double>* test;
      };
      const std::vector<Router> routers = {
          {"random", "task-tuning & naive offloading (random)", &rnd_val, &rnd_test},
          {"prompt-router", "task-tuning & router (prompt classifier)", &pr_val, &pr_test},
          {"post-inference-router", "task-tuning & post-inference router", &po_val, &po_test},
          {"confidence", "task-tuning & confidence threshold", &conf_val, &conf_test}};
      for (const auto& r : routers) {
        out.push_back({r.key, routed(r.name, tt_test, cloud_test, test,
                                     eval::route_above(*r.test, eval::calibrate_threshold(*r.val, rate)))});
        if (!curves) continue;
        for (double x = 0.0; x <= 0.61; x += 0.1) {
          auto row = routed(r.name, tt_test, cloud_test, test,
                            eval::route_above(*r.test, eval::calibrate_threshold(*r.val, x)));
          (*curves)[r.name].push_back({{"call_rate", row.call_rate()}, {"accuracy", row.accuracy()}});
        }
      }
      {
        std::vector<uint8_t> wrong(test.size());
        for (size_t i = 0; i < test.size(); ++i) wrong[i] = !tt_test.local_correct[i];
        out.push_back({"oracle", routed("oracle router (hands off exactly the device's errors)", tt_test,
                                        cloud_test, test, wrong)});
      }
      for (const auto& [algo, dir] : trained_by_seed[si]) {
        if (algo == "task-tuning") continue;
        const std::string name =
            algo == "gapg" ? "GAPG (ours): the device decides" : algo + ": the device decides";
        out.push_back({algo, self_routed(name, v.dev_test.at(algo), cloud_test, test)});
        if (algo == "gapg") {
          // The deployment knob: the same model, handing off wherever its own P(<handoff>) reaches a
          // threshold calibrated on validation to the call-rate target.
          auto m = load_checkpoint(dir);
          const double thr = calibrate_handoff_threshold(m.model, *m.tokenizer, *task, val, max_new, rate);
          auto d = device_verdicts(m.model, *m.tokenizer, *task, test, max_new, thr);
          char label[160];
          std::snprintf(label, sizeof label, "GAPG (ours) + hand-off threshold %.3g calibrated to the rate",
                        thr);
          out.push_back({"gapg+knob", self_routed(label, d, cloud_test, test)});
          if (!curves) continue;
          // The same knob swept: GAPG's own accuracy-vs-call-rate curve.
          for (double t : {0.02, 0.05, 0.1, 0.2, 0.35, 0.5}) {
            auto row = self_routed("sweep", device_verdicts(m.model, *m.tokenizer, *task, test, max_new, t),
                                   cloud_test, test);
            (*curves)["GAPG (ours) + hand-off threshold"].push_back(
                {{"call_rate", row.call_rate()}, {"accuracy", row.accuracy()}, {"threshold", t}});
          }
        }
      }
      return out;
    };
    nlohmann::json curves = nlohmann::json::object();
    std::vector<std::vector<std::pair<std::string, MethodRow>>> rows_by_seed;
    for (size_t si = 0; si < seeds.size(); ++si)
      rows_by_seed.push_back(seed_rows(si, si == 0 ? &curves : nullptr));
    std::vector<MethodRow> rows;
    for (const auto& kr : rows_by_seed[0]) rows.push_back(kr.second);
    std::vector<SeedSpread> spread;
    if (seeds.size() > 1)
      for (const auto& [key, row0] : rows_by_seed[0]) {
        SeedSpread sp;
        sp.method =
            key == "gapg+knob" ? "GAPG (ours) + hand-off threshold calibrated to the rate" : row0.method;
        for (size_t si = 0; si < seeds.size(); ++si)
          for (const auto& [k, r] : rows_by_seed[si])
            if (k == key) {
              sp.seeds.push_back(seeds[si]);
              sp.accuracy.push_back(r.accuracy());
              sp.call_rate.push_back(r.call_rate());
            }
        spread.push_back(sp);
      }
    stages.end(times, "routers");

    stages.begin("report");
    ReportInputs in;
    in.rows = rows;
    in.seed_spread = spread;
    in.curves = curves;
    in.times = times;
    in.call_rate_target = rate;
    in.preset = a->preset;
    in.task = task_name;
    in.device_model = device_dir;
    in.cloud_model = cloud_dir;
    for (const auto& [algo, dir] : trained)
      in.metrics_files[algo] = fs::path(dir).parent_path().string() + "/metrics.jsonl";
    write_report(in, a->out);
    stages.end(times, "report");
    std::fprintf(stderr, "\nreport: %s/report.md (total %.0f s)\n", a->out.c_str(), stages.elapsed());
  });
}

}  // namespace handoff::cli
