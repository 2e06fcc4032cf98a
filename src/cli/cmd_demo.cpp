// `handoff demo`: the whole mission on the embedded default, stage by stage, into one run directory.
//   1 base models (reference checkpoints, or SFT from scratch) → 2 `handoff serve` of the cloud model as a
//   child process on 127.0.0.1 → 3 RL of every method (GAPG and the RL baselines) → 4 device and cloud
//   verdicts on the validation and held-out test sets (cloud through HTTP, cached) → 5 routers calibrated on
//   validation → 6 results.json + report.md. Finished stages are reused on a re-run; --fresh starts over.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "cli/commands.h"
#include "cli/preset.h"
#include "cloud/serve_process.h"
#include "collab/verdicts.h"
#include "common/atomic_file.h"
#include "common/child_process.h"
#include "common/error.h"
#include "common/free_port.h"
#include "eval/comparison.h"
#include "eval/eval_set.h"
#include "eval/pure/report.h"
#include "eval/report_writer.h"
#include "io/checkpoint.h"
#include "rl/method_registry.h"
#include "rl/pure/budget.h"
#include "rl/rl_trainer.h"
#include "rl/sft.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace fs = std::filesystem;

namespace {

struct DemoArgs {
  std::string preset = "quick", out = "runs/demo";
  bool fresh = false, from_scratch = false;
  bool paper_gapg = false;  // ignore demo.algo_options: every method from the preset's rl section alone
  std::string protocol;     // --protocol: the base models are trained in it (from scratch) and keep it
  int threads = 0, jobs = 0;
  int nproc = 1;  // > 1: every RL run data-parallel on this many processes, launched by torchrun
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

// Whether the run in `dir` is finished. A run started with other options (say GAPG with the call-rate
// controller, now asked for with --paper-gapg) is never reused or resumed silently: an Error naming the
// first option that differs. The cloud's address, the cache file and the quiet flag may differ.
bool rl_finished(const std::string& dir, const RlOptions& wanted) {
  const auto st = dir + "/model/trainer_state.json";
  if (!file_exists(st)) return false;
  const auto state = nlohmann::json::parse(read_file(st));
  if (state.contains("options")) {
    // Through from_json, so a key the run's version did not write compares as its default.
    nlohmann::json saved;
    try {
      saved = RlOptions::from_json(state.at("options"), st).to_json();
    } catch (const std::exception& e) {
      throw Error(dir + ": its recorded options cannot be read (" + e.what() + ")",
                  "use another --out, or --fresh to start over");
    }
    const nlohmann::json want = wanted.to_json();  // (items() of a temporary would dangle)
    for (const auto& [key, value] : want.items()) {
      // Options that do not change what is trained.
      if (key == "checkpoint_every" || key == "log_every" || key == "cloud_concurrency" ||
          key == "cloud_timeout_s" || key == "cloud_retries")
        continue;
      if (saved.value(key, nlohmann::json()) != value)
        throw Error(dir + " was trained with " + key + " = " + saved.value(key, nlohmann::json()).dump() +
                        ", this demo asks for " + value.dump(),
                    "use another --out, or --fresh to start over");
    }
  }
  return state.value("step", int64_t{0}) >= wanted.steps;
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
  int nproc = 1;  // > 1: `args` run under torchrun on this many processes (torchrun_args)
  std::string torchrun_logs;
};

// `handoff ARGS` as N data-parallel processes under torchrun (issue 19) on this machine, its rendezvous store
// on `port`, torchrun's logs in LOG_DIR. Not --standalone: that puts every job's store on port 29400, so two
// jobs side by side share one store and the second fails when the first ends and closes it ("Broken pipe").
// Debian's torchrun 1.13 fails under Python 3.11 unless redirects and tees are non-zero: the workers' stdout
// goes to LOG_DIR, their stderr (progress) to the job's log too.
std::vector<std::string> torchrun_args(int nproc, const std::string& log_dir, std::vector<std::string> args,
                                       int port) {
  std::vector<std::string> t = {"--rdzv_backend",
                                "c10d",
                                "--rdzv_endpoint",
                                "127.0.0.1:" + std::to_string(port),
                                "--rdzv_id",
                                "handoff-demo-" + std::to_string(port),
                                "--nproc_per_node",
                                std::to_string(nproc),
                                "-r",
                                "1",
                                "-t",
                                "2",
                                "--log_dir",
                                log_dir,
                                "--no_python",
                                self_executable()};
  t.insert(t.end(), args.begin(), args.end());
  return t;
}

// A job's child process; a torchrun job gets a free port for its store when it starts, not when it was
// listed.
std::unique_ptr<ChildProcess> start_job(const ChildJob& j) {
  if (j.nproc <= 1) return std::make_unique<ChildProcess>(j.args, j.log);
  return std::make_unique<ChildProcess>(torchrun_args(j.nproc, j.torchrun_logs, j.args, free_local_port()),
                                        j.log, "torchrun");
}

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
      running.push_back({&j, start_job(j)});
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
      m.tokenizer->encode_chat(m.protocol.device_messages(p.prompt));
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
      // The reference checkpoints were trained in one protocol; another needs base models trained in it.
      if (!a.protocol.empty() &&
          load_protocol(a.protocol).to_json_text() != recorded_protocol(ref).to_json_text())
        throw Error("--protocol " + a.protocol + ": the reference checkpoint " + ref +
                        " was trained in protocol \"" + recorded_protocol(ref).name + "\"",
                    "add --from-scratch to train the base models in it");
      dirs.push_back(ref);
    }
    return {dirs[0], dirs[1]};
  }
  std::vector<ChildJob> jobs;
  for (const std::string role : {"device", "cloud"}) {
    const std::string out = a.out + "/base-" + role;
    auto opts = SftOptions::from_json(preset.at(role).at("sft"), "preset/" + role + "/sft");
    make_dirs(out);
    std::vector<std::string> args = {"sft", "--role", role, "--preset", a.preset,    "--task",
                                     task,  "--out",  out,  "--resume", "--threads", "1"};
    if (!a.protocol.empty()) args.insert(args.end(), {"--protocol", a.protocol});
    jobs.push_back({"sft " + role, args, out + "/sft.log", out + "/metrics.jsonl",
                    opts.stop_at_step > 0 ? std::min(opts.steps, opts.stop_at_step) : opts.steps, 1, ""});
  }
  run_side_by_side(jobs, parallel);
  return {a.out + "/base-device/model", a.out + "/base-cloud/model"};
}

// demo.gapg_rate_sweep: target call rates GAPG is also trained at (first seed), for the accuracy-vs-call-rate
// plot (issue 15 §2). Each in (0, 1), or an Error naming the preset entry.
std::vector<double> gapg_rate_sweep(const nlohmann::json& demo) {
  const auto rates = demo.value("gapg_rate_sweep", std::vector<double>{});
  std::vector<std::string> names = {eval::fixed(demo.value("max_call_rate", 0.3), 2)};
  for (double r : rates) {
    if (!(r > 0 && r < 1)) throw Error("preset demo.gapg_rate_sweep: a call rate must lie in (0, 1)");
    // Each rate names its run directory (two decimals): no two runs in one directory, and not the main rate
    // again (that run is the main GAPG row).
    const std::string name = eval::fixed(r, 2);
    if (std::find(names.begin(), names.end(), name) != names.end())
      throw Error("preset demo.gapg_rate_sweep: " + name +
                  " appears twice or is demo.max_call_rate (rates are told apart to two decimals)");
    names.push_back(name);
  }
  return rates;
}

// A method's options: the shared ones with the preset's demo.algo_options[algo] on top (e.g. GAPG with the
// call-rate controller, docs/method.md §3.4, while the baselines train as the paper's). Unknown keys and
// invalid values are an Error naming the preset's entry.
RlOptions options_for(const RlOptions& base, const nlohmann::json& algo_options, const std::string& algo) {
  if (!algo_options.contains(algo)) return base;  // (the caller sets algo and seed)
  const std::string where = "preset demo.algo_options." + algo;
  nlohmann::json j = base.to_json();
  if (!algo_options.at(algo).is_object()) throw Error(where + ": must be an object of rl options");
  for (const auto& [key, value] : algo_options.at(algo).items()) j[key] = value;
  RlOptions o = RlOptions::from_json(j, where);
  o.algo = algo;
  // Where the run talks to and computes is not part of the recorded options (rl_options.cpp).
  o.cloud_url = base.cloud_url;
  o.api_key_env = base.api_key_env;
  o.cloud_cache = base.cloud_cache;
  o.device = base.device;
  o.quiet = base.quiet;
  try {
    o.validate();
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return o;
}

// demo.algo_options (none with --paper-gapg), each entry checked against a method and the options now.
nlohmann::json demo_algo_options(const nlohmann::json& demo, const RlOptions& base, bool paper_gapg) {
  const nlohmann::json opts =
      paper_gapg ? nlohmann::json::object() : demo.value("algo_options", nlohmann::json::object());
  if (!opts.is_object()) throw Error("preset demo.algo_options: must be an object (method → rl options)");
  for (const auto& [algo, unused] : opts.items()) {
    find_rl_method(algo);
    options_for(base, opts, algo);
  }
  return opts;
}

// One RL run of the demo: a method at one seed, in its own directory.
struct RlRun {
  RlOptions o;  // the method's options at its seed (and budget)
  std::string dir;
};

// The first seed keeps the plain layout (rl-ALGO), so single-seed runs and reports look as before.
std::string rl_dir(const std::string& out, const std::string& algo, uint64_t seed, bool first) {
  return out + "/rl-" + algo + (first ? "" : "-seed" + std::to_string(seed));
}

// Each run is `handoff train --options …` in its own process. Each keeps its own cloud answer cache (one
// writer per file).
void run_rl_methods(const std::vector<RlRun>& runs, const std::string& device_dir, int parallel, int nproc) {
  std::vector<ChildJob> jobs;
  for (const auto& run : runs) {
    const RlOptions& o = run.o;
    make_dirs(run.dir);
    write_file_atomic(run.dir + "/options.json", o.to_json().dump(2) + "\n");
    std::vector<std::string> args = {"train",
                                     "--options",
                                     run.dir + "/options.json",
                                     "--device",
                                     device_dir,
                                     "--out",
                                     run.dir,
                                     "--resume",
                                     "--threads",
                                     "1",
                                     "--cloud",
                                     o.cloud_url,
                                     "--cloud-cache",
                                     run.dir + "-cloud_cache.jsonl"};
    ChildJob job{fs::path(run.dir).filename().string(),
                 args,
                 run.dir + "/train.log",
                 run.dir + "/metrics.jsonl",
                 o.steps,
                 nproc,
                 run.dir + "/torchrun-logs"};
    jobs.push_back(std::move(job));
  }
  run_side_by_side(jobs, parallel);
}

// The RL options every method of the run shares (preset rl section + the demo's cloud and budget).
RlOptions demo_rl_options(const nlohmann::json& preset, const std::string& task, double rate,
                          const std::string& cloud_url, const std::string& out) {
  RlOptions base = preset.contains("rl") ? RlOptions::from_json(preset["rl"], "preset/rl") : RlOptions{};
  base.task = task;
  base.budget = budget_from_call_rate(rate);
  base.cloud_url = cloud_url;
  base.cloud_model = "cloud";
  base.cloud_cache = out + "/cloud_cache.jsonl";
  return base;
}

// A run to train unless a run with the same options finished in `dir` earlier.
void plan_run(const RlOptions& wanted, const std::string& dir, std::vector<RlRun>& todo) {
  if (rl_finished(dir, wanted)) {
    std::fprintf(stderr, "   --- %s: finished earlier, reused\n", fs::path(dir).filename().c_str());
  } else {
    todo.push_back({wanted, dir});
  }
}

// What the RL stage trained: per seed, algo → model dir; and GAPG at each demo.gapg_rate_sweep rate (first
// seed), rate → model dir.
struct TrainedModels {
  std::vector<std::map<std::string, std::string>> by_seed;
  std::vector<std::pair<double, std::string>> gapg_by_rate;
};

// Every method at every RL seed, and GAPG at the sweep's rates (runs finished earlier are reused).
TrainedModels train_every_method(const nlohmann::json& demo, const std::vector<uint64_t>& seeds,
                                 const RlOptions& base, const nlohmann::json& algo_options, const DemoArgs& a,
                                 const std::string& device_dir, int parallel) {
  TrainedModels t;
  t.by_seed.resize(seeds.size());
  std::vector<RlRun> todo;
  auto wanted = [&](const std::string& algo, uint64_t seed) {
    RlOptions o = options_for(base, algo_options, algo);
    o.algo = algo;
    o.seed = seed;
    o.quiet = true;
    return o;
  };
  for (size_t si = 0; si < seeds.size(); ++si)
    for (const auto& algo : demo.at("algos").get<std::vector<std::string>>()) {
      find_rl_method(algo);  // an unknown name is an error naming the registry's methods, before any run
      const std::string dir = rl_dir(a.out, algo, seeds[si], si == 0);
      t.by_seed[si][algo] = dir + "/model";
      plan_run(wanted(algo, seeds[si]), dir, todo);
    }
  for (double r : gapg_rate_sweep(demo)) {
    RlOptions o = wanted("gapg", seeds[0]);
    o.budget = budget_from_call_rate(r);
    const std::string dir = a.out + "/rl-gapg-rate" + eval::fixed(r, 2);
    t.gapg_by_rate.push_back({r, dir + "/model"});
    plan_run(o, dir, todo);
  }
  run_rl_methods(todo, device_dir, parallel, a.nproc);
  return t;
}

// The comparison's knobs from the preset's demo section; the defaults are the recorded runs' values.
ComparisonSettings comparison_settings(const nlohmann::json& demo, int64_t max_new_tokens) {
  ComparisonSettings s;
  s.call_rate = demo.value("max_call_rate", s.call_rate);
  s.random_seed = demo.value("random_router_seed", s.random_seed);
  s.router_sweep = demo.value("router_sweep", s.router_sweep);
  s.handoff_threshold_sweep = demo.value("handoff_threshold_sweep", s.handoff_threshold_sweep);
  s.max_new_tokens = max_new_tokens;
  for (double x : s.router_sweep)
    if (!(x >= 0 && x <= 1)) throw Error("preset demo.router_sweep: call rate outside [0, 1]");
  return s;
}

// The run's held-out test and validation items (seeds: preset demo.test_seed, demo.val_seed).
struct EvalSets {
  std::vector<Problem> test, val;
};
EvalSets eval_sets(const nlohmann::json& demo, const Task& task, const std::vector<int>& diffs) {
  EvalSets e;
  e.test = make_eval_set(task, diffs, demo.value("test_per_difficulty", int64_t{50}),
                         demo.value("test_seed", uint64_t{20261123}), Split::kTest);
  e.val = make_eval_set(task, diffs, demo.value("val_per_difficulty", int64_t{50}),
                        demo.value("val_seed", uint64_t{777}), Split::kTrain);
  return e;
}

// The cloud's verdicts on test (validation is asked too, into the same cache, as the recorded runs did) and,
// per seed, every trained model's greedy verdicts on test and the task-tuned model's on validation (the
// routers are trained and calibrated on it).
struct RunVerdicts {
  CloudVerdicts cloud_test;
  std::vector<SeedVerdicts> by_seed;
};
RunVerdicts run_verdicts(const std::string& cloud_url, const std::string& out, const Task& task,
                         const EvalSets& sets,
                         const std::vector<std::map<std::string, std::string>>& trained_by_seed,
                         const std::string& device_dir, int64_t max_new_tokens) {
  CloudClientOptions co;
  co.base_url = cloud_url;
  co.model = "cloud";
  CloudClient client(co);
  // The cloud is asked as the device's protocol says (its base checkpoint records it).
  CloudAnswerCache cache(client, out + "/cloud_cache.jsonl", 128, "", recorded_protocol(device_dir));
  RunVerdicts v;
  v.cloud_test = cloud_verdicts(cache, task, sets.test);
  cloud_verdicts(cache, task, sets.val);
  for (const auto& trained : trained_by_seed)
    v.by_seed.push_back(seed_verdicts(trained, device_dir, task, sets.test, sets.val, max_new_tokens));
  return v;
}

ReportInputs report_inputs(const std::vector<KeyedRows>& rows_by_seed, const std::vector<uint64_t>& seeds,
                           const nlohmann::json& curves, const nlohmann::json& times, double rate,
                           const DemoArgs& a, const std::string& task, const std::string& device_dir,
                           const std::string& cloud_dir, const std::map<std::string, std::string>& trained) {
  ReportInputs in;
  for (const auto& kr : rows_by_seed[0]) in.rows.push_back(kr.second);
  in.seed_spread = seed_spread(rows_by_seed, seeds);
  in.curves = curves;
  in.times = times;
  in.call_rate_target = rate;
  in.preset = a.preset;
  in.task = task;
  in.device_model = device_dir;
  in.cloud_model = cloud_dir;
  for (const auto& [algo, dir] : trained)
    in.metrics_files[algo] = fs::path(dir).parent_path().string() + "/metrics.jsonl";
  return in;
}

// The whole mission, stage by stage (the file comment).
void run_demo(const DemoArgs& a) {
  configure_threads(a.threads);
  auto preset = load_preset(a.preset);
  if (!preset.contains("demo")) throw Error("preset '" + a.preset + "' has no 'demo' section");
  const auto& demo = preset["demo"];
  const std::string task_name = preset.value("task", std::string("chain"));
  auto task = make_task(task_name);
  // The per-method options are checked before anything is written (the URL is the server's, known later).
  const nlohmann::json algo_options = demo_algo_options(
      demo,
      demo_rl_options(preset, task_name, demo.value("max_call_rate", 0.3), "http://127.0.0.1:1/v1", a.out),
      a.paper_gapg);
  gapg_rate_sweep(demo);
  if (a.nproc > 1 && std::system("command -v torchrun >/dev/null 2>&1") != 0)
    throw Error("--nproc " + std::to_string(a.nproc) + " runs RL under torchrun, which is not on PATH",
                "apt-get install python3-torch (scripts/setup.sh installs it)");
  if (a.fresh) fs::remove_all(a.out);
  make_dirs(a.out);
  nlohmann::json times = nlohmann::json::object();
  Stages stages(6);

  stages.begin("base models");
  const int parallel = a.jobs > 0 ? a.jobs : demo.value("jobs", 1);
  const auto [device_dir, cloud_dir] = base_models(demo, preset, a, task_name, parallel);
  std::fprintf(stderr, "   device %s, cloud %s, protocol %s\n", device_dir.c_str(), cloud_dir.c_str(),
               recorded_protocol(device_dir).name.c_str());
  write_file_atomic(a.out + "/" + kProtocolFile, recorded_protocol(device_dir).to_json_text());
  stages.end(times, "base_models");

  stages.begin("cloud server (handoff serve, child process on 127.0.0.1)");
  ServeProcess server({"--model", cloud_dir, "--model-name", "cloud", "--threads", "1"},
                      a.out + "/serve.log");
  const std::string cloud_url = server.url() + "/v1";
  std::fprintf(stderr, "   cloud at %s (pid %d)\n", cloud_url.c_str(), static_cast<int>(server.pid()));
  stages.end(times, "serve");

  const double rate = demo.value("max_call_rate", 0.3);
  const RlOptions base = demo_rl_options(preset, task_name, rate, cloud_url, a.out);
  // RL seeds (preset demo.seeds; default the rl section's seed): every method is trained once per seed.
  // The main table is the first seed's; with more seeds the report adds their spread.
  const std::vector<uint64_t> seeds = demo.value("seeds", std::vector<uint64_t>{base.seed});
  if (seeds.empty()) throw Error("preset '" + a.preset + "': demo.seeds is empty");
  stages.begin("RL post-training of every method");
  const TrainedModels trained = train_every_method(demo, seeds, base, algo_options, a, device_dir, parallel);
  const auto& trained_by_seed = trained.by_seed;
  stages.end(times, "rl");

  stages.begin("verdicts on the validation and held-out test sets");
  const EvalSets sets = eval_sets(demo, *task, resolve_difficulties(*task, base.difficulties));
  const RunVerdicts verdicts =
      run_verdicts(cloud_url, a.out, *task, sets, trained_by_seed, device_dir, base.max_new_tokens);
  stages.end(times, "verdicts");

  stages.begin("baselines and routers (calibrated on validation to the call rate)");
  const ComparisonSettings settings = comparison_settings(demo, base.max_new_tokens);
  const ComparisonData data{*task, sets.test, sets.val, verdicts.cloud_test};
  nlohmann::json curves = nlohmann::json::object();
  std::vector<KeyedRows> rows_by_seed;
  std::vector<AtRateRow> at_rate;
  std::vector<RouterAuc> router_auc;
  for (size_t si = 0; si < seeds.size(); ++si) {
    SeedComparison c =
        comparison_rows(data, verdicts.by_seed[si], settings, si, seeds[si], si == 0 ? &curves : nullptr);
    rows_by_seed.push_back(std::move(c.rows));
    at_rate.insert(at_rate.end(), c.at_rate.begin(), c.at_rate.end());
    router_auc.insert(router_auc.end(), c.router_auc.begin(), c.router_auc.end());
  }
  stages.end(times, "routers");

  stages.begin("report");
  ReportInputs report = report_inputs(rows_by_seed, seeds, curves, times, rate, a, task_name, device_dir,
                                      cloud_dir, trained_by_seed[0]);
  report.at_rate = std::move(at_rate);
  report.algo_options = algo_options;
  for (const auto& [r, dir] : trained.gapg_by_rate) {
    auto m = load_checkpoint(dir);
    const DeviceVerdicts d =
        device_verdicts(m.model, {*m.tokenizer, m.protocol}, *task, sets.test, base.max_new_tokens);
    report.gapg_by_rate.push_back(
        {r, self_routed("GAPG trained at r = " + eval::fixed(r, 2), d, verdicts.cloud_test, sets.test)});
  }
  report.router_auc = std::move(router_auc);
  write_report(report, a.out);
  stages.end(times, "report");
  std::fprintf(stderr, "\nreport: %s/report.md (total %.0f s)\n", a.out.c_str(), stages.elapsed());
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
  cmd->add_flag(
      "--paper-gapg", a->paper_gapg,
      "Train GAPG (and every method) from the preset's rl section alone: the paper's filter cap, no "
      "call-rate controller (ignores the preset's demo.algo_options)");
  cmd->add_option(
      "--protocol", a->protocol,
      "What the device and the cloud are told (handoff, paper, or a protocol JSON file): the base "
      "models are trained in it, so anything but the reference checkpoints' own needs "
      "--from-scratch");
  cmd->add_option("--threads", a->threads, "Compute threads (0 = all cores)");
  cmd->add_option("--jobs", a->jobs,
                  "Base models and RL methods trained side by side, one core each (default: the preset's "
                  "demo.jobs)")
      ->check(CLI::Range(1, 64));
  cmd->add_option(
         "--nproc", a->nproc,
         "Processes per RL run, data-parallel under torchrun (one thread each; the same steps as one "
         "process up to float summation order)")
      ->check(CLI::Range(1, 64));
  cmd->callback([a] { run_demo(*a); });
}

}  // namespace handoff::cli
