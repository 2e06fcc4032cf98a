// The CLI: bad input gives a clear message and a non-zero exit; a tiny sft → eval round trip works.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>
#include <map>
#include <vector>

#include "cli_runner.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "protocol/protocol.h"
#include "runtime/thread_rule.h"

#include <nlohmann/json.hpp>

using handoff::testing::run_cli;
namespace fs = std::filesystem;

namespace {
std::string tmp(const std::string& name) {
  auto p = (fs::temp_directory_path() / ("handoff_cli_" + name)).string();
  fs::remove_all(p);
  return p;
}
bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}
// A method's row name as a markdown table cell and as SVG text.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}
std::string xml_text(const std::string& s) {
  std::string out;
  for (char c : s)
    out += c == '&'    ? "&amp;"
           : c == '<'  ? "&lt;"
           : c == '>'  ? "&gt;"
           : c == '\'' ? "&apos;"
           : c == '"'  ? "&quot;"
                       : std::string(1, c);
  return out;
}
}  // namespace

TEST(CliTest, BadInputGivesMessageAndNonZeroExit) {
  auto r = run_cli("");
  EXPECT_NE(r.code, 0);
  r = run_cli("frobnicate");
  EXPECT_NE(r.code, 0);
  r = run_cli("sft --role device --preset nosuchpreset --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown preset 'nosuchpreset'")) << r.output;
  EXPECT_TRUE(contains(r.output, "quick")) << r.output;
  r = run_cli("sft --role device --task nosuchtask --steps 1 --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "nosuchtask")) << r.output;
  r = run_cli("sft --role wizard --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "wizard")) << r.output;
  r = run_cli("sft --role device --steps -3 --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  r = run_cli("sft --role device");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--out")) << r.output;
  const auto bad_preset = tmp("badpreset.json");
  handoff::write_file_atomic(bad_preset, "{ not json");
  r = run_cli("sft --role device --preset " + bad_preset + " --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "not valid JSON")) << r.output;
  // RL options files (how `handoff demo` hands a method to a child `handoff train`): missing, not JSON,
  // unknown key, and a compute device this build does not have.
  const std::string dev = std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
  r = run_cli("train --options " + tmp("nosuch.json") + " --device " + dev + " --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "no such file")) << r.output;
  r = run_cli("train --options " + bad_preset + " --device " + dev + " --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "not valid JSON")) << r.output;
  handoff::write_file_atomic(bad_preset, R"({"algo": "gapg", "stepz": 3})");
  r = run_cli("train --options " + bad_preset + " --device " + dev + " --out " + tmp("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown RL option 'stepz'")) << r.output;
  r = run_cli("eval --model " + dev + " --device tpu --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown compute device 'tpu'")) << r.output;
  r = run_cli("eval --model " + dev + " --precision fp16 --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown --precision 'fp16' (known: fp32, bf16)")) << r.output;
  r = run_cli("eval --model " + dev + " --weights int4 --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown --weights 'int4' (known: fp32, bf16, int8)")) << r.output;
  r = run_cli("eval --model " + dev + " --weights int8 --precision bf16 --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--weights int8 keeps fp32 activations")) << r.output;
  // The knob is a probability: 1.1 would silently mean "off" (the unset default), so it is refused.
  r = run_cli("eval --model " + dev + " --cloud http://127.0.0.1:9/v1 --handoff-threshold 1.1 --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--handoff-threshold")) << r.output;
  fs::remove_all(tmp("x"));
  fs::remove(bad_preset);
}

TEST(CliTest, InfoReportsBlasAndGemm) {
  auto r = run_cli("info --gemm-size 256");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "BLAS:")) << r.output;
  EXPECT_TRUE(contains(r.output, "GFLOP/s")) << r.output;
  // Idle OpenMP threads sleep instead of spinning on the cores OpenBLAS needs (issue 18), unless the user
  // chose a policy.
  EXPECT_TRUE(contains(r.output, "OpenMP wait policy PASSIVE")) << r.output;
  r = run_cli("info --gemm-size 64", "OMP_WAIT_POLICY=ACTIVE");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "OpenMP wait policy ACTIVE")) << r.output;
}

// The thread rule (runtime/thread_rule.h): one thread below width 128, where a second measured slower; the
// machine's share above; the user's --threads always wins. `info` says what it chose, why, and what
// reproducibility needs.
TEST(CliTest, ThreadRuleFollowsTheWidth) {
  EXPECT_EQ(handoff::choose_threads(0, 64, 2, 1).threads, 1);
  EXPECT_EQ(handoff::choose_threads(0, 128, 2, 1).threads, 2);
  EXPECT_EQ(handoff::choose_threads(0, 0, 8, 1).threads, 8);    // width unknown: all cores
  EXPECT_EQ(handoff::choose_threads(0, 896, 8, 2).threads, 4);  // two processes on this machine share it
  EXPECT_EQ(handoff::choose_threads(0, 896, 2, 4).threads, 1);  // never below one
  EXPECT_EQ(handoff::choose_threads(3, 64, 2, 1).threads, 3);
  EXPECT_TRUE(contains(handoff::choose_threads(3, 64, 2, 1).why, "--threads 3"));
  // Training: data threads by default (the core share), ATen's threads only when asked for alone.
  using handoff::choose_training_threads;
  EXPECT_EQ(choose_training_threads(0, 0, 2, 1).data_threads, 2);
  EXPECT_EQ(choose_training_threads(0, 0, 2, 1).op_threads, 1);
  EXPECT_EQ(choose_training_threads(0, 0, 8, 2).data_threads, 4);
  EXPECT_EQ(choose_training_threads(2, 0, 8, 1).data_threads, 1);
  EXPECT_EQ(choose_training_threads(2, 0, 8, 1).op_threads, 2);
  EXPECT_EQ(choose_training_threads(1, 3, 8, 1).data_threads, 3);
  EXPECT_THROW(choose_training_threads(2, 2, 8, 1), handoff::Error);
  EXPECT_THROW(choose_training_threads(-1, 0, 8, 1), handoff::Error);

  auto r = run_cli("info --gemm-size 64 --model " + std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "threads (eval, ask, serve, route): 1 (auto: width 64 < 128")) << r.output;
  EXPECT_TRUE(contains(r.output, "threads (sft, train): ")) << r.output;
  EXPECT_TRUE(contains(r.output, "ATen threads 1, OpenBLAS threads 1")) << r.output;
  EXPECT_TRUE(contains(r.output, "reproducibility: same kernels")) << r.output;
  r = run_cli("info --gemm-size 64 --width 64 --threads 2");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "route): 2 (--threads 2)")) << r.output;
  EXPECT_TRUE(contains(r.output, "ATen threads 2")) << r.output;
  EXPECT_TRUE(contains(r.output, "decode GEMV: 2 thread(s)")) << r.output;  // the split is real
  r = run_cli("info --gemm-size 64 --model " + tmp("no-such-model"));
  EXPECT_NE(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "no readable config.json")) << r.output;
}

// Training pins OpenBLAS's and ATen's kernels to the AVX2 set so that its numbers do not depend on the CPU
// kind (runtime/kernels.h): the default run must equal one where those kernels are chosen by hand, and say
// so.
TEST(CliTest, ComputeCommandsPinPortableKernels) {
  // Where the portable set cannot run (no AVX2/FMA, not x86-64), the CPU's own kernels stay: that is asserted
  // too.
  bool pinnable = false;
#if defined(__x86_64__)
  __builtin_cpu_init();
  pinnable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  const std::string portable = "portable (OpenBLAS Haswell, ATen AVX2)";
  auto r = run_cli("info --gemm-size 64");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, pinnable ? "kernels: " + portable : std::string("kernels: native (")))
      << r.output;
  // Opting out leaves OpenBLAS its own choice (named in the "threads:" line); a CPU whose own choice is the
  // portable set (an AVX2-only x86) reports it as such.
  r = run_cli("info --gemm-size 64", "HANDOFF_KERNELS=native");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto max_threads = r.output.find(" MAX_THREADS");
  ASSERT_NE(max_threads, std::string::npos) << r.output;
  const auto core_begin = r.output.rfind(' ', max_threads - 1) + 1;
  const std::string own_core = r.output.substr(core_begin, max_threads - core_begin);
  EXPECT_TRUE(contains(r.output, "OpenBLAS " + own_core + ", ATen")) << r.output;
  if (own_core != "Haswell") {
    EXPECT_TRUE(contains(r.output, "kernels: native (")) << r.output;
  }
  r = run_cli("sft --role device --steps 1 --out " + tmp("k"), "HANDOFF_KERNELS=fastest");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "HANDOFF_KERNELS='fastest' is not known")) << r.output;

  // The default run equals one whose kernels are chosen by hand through the environment (the portable set
  // where it can run, the CPU's own elsewhere), byte for byte, and records which it used.
  const std::string a = tmp("kernels_default"), b = tmp("kernels_by_hand");
  r = run_cli("sft --role device --preset micro --steps 4 --threads 1 --quiet --out " + a);
  ASSERT_EQ(r.code, 0) << r.output;
  r = run_cli("sft --role device --preset micro --steps 4 --threads 1 --quiet --out " + b,
              pinnable ? "HANDOFF_KERNELS=native OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2"
                       : "HANDOFF_KERNELS=native");
  ASSERT_EQ(r.code, 0) << r.output;
  auto state = nlohmann::json::parse(handoff::read_file(a + "/model/trainer_state.json"));
  const std::string kernels = state.at("kernels").get<std::string>();
  if (pinnable) {
    EXPECT_EQ(kernels, portable);
  } else {
    EXPECT_EQ(kernels.rfind("native (", 0), 0u) << kernels;
  }
  EXPECT_EQ(handoff::read_file(a + "/model/model.safetensors"),
            handoff::read_file(b + "/model/model.safetensors"));
  fs::remove_all(a);
  fs::remove_all(b);
  fs::remove_all(tmp("k"));
}

// A demo in a user's own protocol: the base models are trained in it, every run and checkpoint records it,
// and a hand-off phrase (no <handoff> token) has no threshold rows. The reference checkpoints, trained in the
// default, refuse another protocol unless the base models are trained from scratch.
TEST(CliTest, MicroDemoRunsInTheProtocolItIsGiven) {
  const auto out = tmp("demo_protocol");
  handoff::Protocol mine = handoff::load_protocol("handoff");
  mine.name = "mine";
  mine.answer = handoff::AnswerForm::kAnswerTags;
  mine.handoff = "[[help]]";
  const std::string file = tmp("mine.json");
  handoff::write_file_atomic(file, mine.to_json_text());
  auto r = run_cli("demo --preset micro --fresh --threads 1 --protocol " + file + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  for (const std::string& dir : {out, out + "/base-device/model", out + "/base-cloud/model"})
    EXPECT_EQ(handoff::recorded_protocol(dir).to_json_text(), mine.to_json_text()) << dir;
  const auto results = nlohmann::json::parse(handoff::read_file(out + "/results.json"));
  bool gapg = false;
  for (const auto& m : results["methods"]) {
    const std::string name = m["method"];
    EXPECT_FALSE(contains(name, "hand-off threshold")) << name;
    gapg = gapg || contains(name, "GAPG (ours): the device decides");
  }
  EXPECT_TRUE(gapg) << results["methods"].dump(1);
  auto refused = run_cli("demo --preset quick --protocol paper --out " + tmp("demo_refused"));
  EXPECT_NE(refused.code, 0);
  EXPECT_TRUE(contains(refused.output, "--from-scratch")) << refused.output;
}

TEST(CliTest, MicroDemoRunsEveryStageAndReportsEveryMethod) {
  const auto out = tmp("demo");
  auto r = run_cli("demo --preset micro --fresh --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage 6/6")) << r.output;
  const std::string report = handoff::read_file(out + "/report.md");
  auto results = nlohmann::json::parse(handoff::read_file(out + "/results.json"));
  // Every method, in the report's order: anchors, the routers on the task-tuned device, the oracle, then the
  // RL methods (micro: collab-grpo, gapg) deciding themselves, each followed by its calibrated hand-off
  // threshold (every method that can hand off gets one, never GAPG alone).
  const std::vector<std::string> expected = {"device-only (task-tuned)",
                                             "cloud-only",
                                             "task-tuning & naive offloading (random)",
                                             "task-tuning & router (prompt classifier)",
                                             "task-tuning & post-inference router",
                                             "task-tuning & confidence threshold",
                                             "oracle router (hands off exactly the device's errors)",
                                             "collab-grpo: the device decides",
                                             "collab-grpo + hand-off threshold ",
                                             "GAPG (ours): the device decides",
                                             "GAPG (ours) + hand-off threshold "};
  const auto& methods = results["methods"];
  ASSERT_EQ(methods.size(), expected.size()) << results.dump(1);
  std::map<std::string, nlohmann::json> by_name;
  for (size_t i = 0; i < expected.size(); ++i) {
    const std::string name = methods[i]["method"];
    EXPECT_EQ(name.rfind(expected[i], 0), 0u) << i << ": " << name;
    by_name[expected[i]] = methods[i];
  }
  EXPECT_TRUE(contains(methods[8]["method"], "calibrated to the rate")) << methods[8]["method"];
  EXPECT_TRUE(contains(methods[10]["method"], "calibrated to the rate")) << methods[10]["method"];
  // Each self-deciding row, per seed, against the best router at its own call rate: 4 rows x 2 seeds. The
  // method's side is its row of the table (seed 1); the difference is the two accuracies' and lies in its
  // paired interval; the router is a calibrated one, never the oracle.
  const auto& at_rate = results["at_own_rate"];
  ASSERT_EQ(at_rate.size(), 8u) << at_rate.dump(1);
  for (const auto& r : at_rate) {
    const std::string m = r["method"];
    EXPECT_NEAR(r["difference"].get<double>(),
                r["accuracy"].get<double>() - r["router_accuracy"].get<double>(), 1e-12)
        << m;
    EXPECT_LE(r["difference_lo"].get<double>(), r["difference"].get<double>()) << m;
    EXPECT_GE(r["difference_hi"].get<double>(), r["difference"].get<double>()) << m;
    EXPECT_EQ(r["excludes_zero"].get<bool>(),
              r["difference_lo"].get<double>() > 0 || r["difference_hi"].get<double>() < 0)
        << m;
    EXPECT_TRUE(r["router"].get<std::string>().rfind("task-tuning & ", 0) == 0) << r["router"];
    // The same row against the paper's own router (the prompt classifier): the best router is never worse.
    ASSERT_TRUE(r.contains("paper_router")) << r.dump(1);
    const auto& p = r["paper_router"];
    EXPECT_NEAR(p["difference"].get<double>(), r["accuracy"].get<double>() - p["accuracy"].get<double>(),
                1e-12);
    EXPECT_LE(p["difference_lo"].get<double>(), p["difference"].get<double>()) << m;
    EXPECT_GE(p["difference_hi"].get<double>(), p["difference"].get<double>()) << m;
    EXPECT_GE(r["router_accuracy"].get<double>(), p["accuracy"].get<double>()) << m;
    if (r["seed"] == 1) {
      bool found = false;
      for (const auto& row : methods)
        if (row["method"] == m) {
          found = true;
          EXPECT_EQ(row["call_rate"], r["call_rate"]) << m;
          EXPECT_EQ(row["accuracy"], r["accuracy"]) << m;
        }
      EXPECT_TRUE(found) << m;
    }
  }
  EXPECT_TRUE(contains(report, "## Against the best router at each method's own call rate")) << report;
  EXPECT_TRUE(
      contains(report, "## Against the paper's router (prompt classifier) at each method's own call rate"))
      << report;
  // Each calibrated router's AUC for the task-tuned device's failures, per seed (4 routers x 2 seeds): a
  // probability where both classes occur on a split; the oracle is not among them.
  const auto& auc = results["router_auc"];
  ASSERT_EQ(auc.size(), 8u) << auc.dump(1);
  for (const auto& r : auc) {
    EXPECT_TRUE(r["router"].get<std::string>().rfind("task-tuning & ", 0) == 0) << r["router"];
    for (const char* k : {"val_auc", "test_auc"})
      if (!r[k].is_null()) {
        EXPECT_GE(r[k].get<double>(), 0.0) << r.dump();
        EXPECT_LE(r[k].get<double>(), 1.0) << r.dump();
      }
  }
  EXPECT_TRUE(contains(report, "## How well each router predicts the task-tuned device's failures"))
      << report;
  // GAPG alone was trained with the preset's demo.algo_options (the call-rate controller and the end-of-run
  // selection); the report says so, the baselines' runs carry none of it.
  EXPECT_EQ(results["algo_options"]["gapg"]["call_rate_control"], "dual") << results["algo_options"];
  EXPECT_TRUE(contains(report, "`gapg`: call_rate_control=\"dual\"")) << report;
  const auto gapg_state =
      nlohmann::json::parse(handoff::read_file(out + "/rl-gapg/model/trainer_state.json"));
  EXPECT_GE(gapg_state["selected_step"].get<int64_t>(), 0) << gapg_state.dump();
  EXPECT_TRUE(fs::exists(out + "/rl-gapg/selected/model.safetensors"));
  const auto grpo_state =
      nlohmann::json::parse(handoff::read_file(out + "/rl-collab-grpo/model/trainer_state.json"));
  EXPECT_EQ(grpo_state["options"]["call_rate_control"], "none");
  EXPECT_FALSE(grpo_state.contains("selected_step"));
  // GAPG also trained at the sweep's other target (0.5), deciding itself on the same test items: its row in
  // results.json and a point in the plot.
  ASSERT_EQ(results["gapg_rate_sweep"].size(), 1u) << results.dump(1);
  const auto& pt = results["gapg_rate_sweep"][0];
  EXPECT_EQ(pt["target"].get<double>(), 0.5);
  EXPECT_GE(pt["accuracy"].get<double>(), pt["ci95"][0].get<double>());
  EXPECT_LE(pt["accuracy"].get<double>(), pt["ci95"][1].get<double>());
  EXPECT_NEAR(1.0,  // ρ = r / (1 − r)
              nlohmann::json::parse(
                  handoff::read_file(out + "/rl-gapg-rate0.50/model/trainer_state.json"))["options"]["budget"]
                  .get<double>(),
              1e-12);
  EXPECT_TRUE(contains(handoff::read_file(out + "/accuracy_vs_call_rate.svg"),
                       "GAPG trained at each target rate (own decisions)"));
  const auto& dev = by_name["device-only (task-tuned)"];
  const auto& cloud = by_name["cloud-only"];
  const auto& oracle = by_name["oracle router (hands off exactly the device's errors)"];
  // Anchors by construction: device-only never calls, cloud-only always does and never runs the device.
  EXPECT_EQ(dev["call_rate"].get<double>(), 0.0);
  EXPECT_EQ(cloud["call_rate"].get<double>(), 1.0);
  EXPECT_EQ(cloud["device_tokens_per_query"].get<double>(), 0.0);
  if (!dev["gap_recovered"].is_null()) {
    EXPECT_EQ(dev["gap_recovered"].get<double>(), 0.0);
    EXPECT_DOUBLE_EQ(cloud["gap_recovered"].get<double>(), 1.0);
  }
  // The oracle hands off exactly the device's errors: correct wherever the device or the cloud is, so at
  // least as accurate as either anchor, and its call rate is the device's error rate.
  EXPECT_GE(oracle["accuracy"].get<double>(), dev["accuracy"].get<double>());
  EXPECT_GE(oracle["accuracy"].get<double>(), cloud["accuracy"].get<double>());
  EXPECT_DOUBLE_EQ(oracle["call_rate"].get<double>(), 1.0 - dev["accuracy"].get<double>());
  // 2 difficulties × 6 test items (micro): every rate is a multiple of 1/12, per difficulty of 1/6.
  const int n_test = 12;
  for (const auto& m : methods) {
    const double acc = m["accuracy"].get<double>(), call = m["call_rate"].get<double>();
    EXPECT_NEAR(acc * n_test, std::round(acc * n_test), 1e-9) << m["method"];
    EXPECT_NEAR(call * n_test, std::round(call * n_test), 1e-9) << m["method"];
    EXPECT_LE(m["ci95"][0].get<double>(), acc) << m["method"];
    EXPECT_GE(m["ci95"][1].get<double>(), acc) << m["method"];
    ASSERT_EQ(m["by_difficulty"].size(), 2u) << m["method"];
    EXPECT_DOUBLE_EQ((m["by_difficulty"]["1"]["accuracy"].get<double>() +
                      m["by_difficulty"]["2"]["accuracy"].get<double>()) /
                         2,
                     acc)
        << m["method"];
    // Latency split: a method that calls the cloud pays measured round trips; one that never calls pays none.
    const double cloud_ms = m["cloud_ms_per_query"].get<double>();
    if (call > 0) {
      EXPECT_GT(cloud_ms, 0.0) << m["method"];
    } else {
      EXPECT_EQ(cloud_ms, 0.0) << m["method"];
    }
    if (m["method"] != "cloud-only") {
      EXPECT_GT(m["device_ms_per_query"].get<double>(), 0.0) << m["method"];
    }
  }
  // Router curves: each score router swept over the preset's 7 call rates (0 … 0.6), the test call rate
  // non-decreasing along the sweep (a higher rate never raises the threshold), and the sweep's 0.3 point is
  // the router's own row (calibrated to the preset's rate 0.3); GAPG's knob at the preset's 6 thresholds.
  const auto& curves = results["router_curves"];
  ASSERT_EQ(curves.size(), 5u) << curves.dump();
  for (const std::string router :
       {"task-tuning & naive offloading (random)", "task-tuning & router (prompt classifier)",
        "task-tuning & post-inference router", "task-tuning & confidence threshold"}) {
    ASSERT_TRUE(curves.contains(router)) << router;
    const auto& c = curves[router];
    ASSERT_EQ(c.size(), 7u) << router;
    for (size_t i = 1; i < c.size(); ++i)
      EXPECT_GE(c[i]["call_rate"].get<double>(), c[i - 1]["call_rate"].get<double>()) << router << " " << i;
    EXPECT_EQ(c[3]["call_rate"], by_name[router]["call_rate"]) << router;
    EXPECT_EQ(c[3]["accuracy"], by_name[router]["accuracy"]) << router;
  }
  const auto& knob = curves["GAPG (ours) + hand-off threshold"];
  ASSERT_EQ(knob.size(), 6u);
  EXPECT_EQ(knob[0]["threshold"].get<double>(), 0.02);
  EXPECT_EQ(knob[5]["threshold"].get<double>(), 0.5);
  // report.md: the table header and every method's row; the plot names every method.
  EXPECT_TRUE(contains(report, "| method | accuracy % [95 % CI] | call rate % | gap recovered % |"))
      << report;
  const std::string plot = handoff::read_file(out + "/accuracy_vs_call_rate.svg");
  for (const auto& m : methods) {
    EXPECT_TRUE(contains(report, "\n| " + md_cell(m["method"]) + " | ")) << m["method"];
    EXPECT_TRUE(contains(plot, xml_text(m["method"]))) << m["method"];
  }
  // Two RL seeds (micro preset): every method trained twice, and the report gives the spread per method with
  // the main table's numbers as seed 1's.
  EXPECT_TRUE(fs::exists(out + "/rl-gapg-seed2/model/model.safetensors"));
  EXPECT_TRUE(contains(report, "## Across RL seeds (1, 2)")) << report;
  ASSERT_EQ(results["seeds"].size(), results["methods"].size());
  for (size_t i = 0; i < results["seeds"].size(); ++i) {
    const auto& sp = results["seeds"][i];
    ASSERT_EQ(sp["accuracy"].size(), 2u) << sp.dump();
    if (sp["method"].get<std::string>().find(" + hand-off threshold") == std::string::npos) {
      EXPECT_EQ(sp["method"], results["methods"][i]["method"]);
    }
    EXPECT_DOUBLE_EQ(sp["accuracy"][0].get<double>(), results["methods"][i]["accuracy"].get<double>());
    EXPECT_DOUBLE_EQ(sp["call_rate"][0].get<double>(), results["methods"][i]["call_rate"].get<double>());
    const double a0 = sp["accuracy"][0].get<double>(), a1 = sp["accuracy"][1].get<double>();
    EXPECT_NEAR(sp["accuracy_mean"].get<double>(), (a0 + a1) / 2, 1e-12);
    EXPECT_NEAR(sp["accuracy_sd"].get<double>(), std::abs(a0 - a1) / std::sqrt(2.0), 1e-12);
  }
  for (const std::string svg :
       {"accuracy_vs_call_rate.svg", "training_call_rate.svg", "training_reward.svg", "training_gapg.svg"}) {
    const std::string s = handoff::read_file(out + "/" + svg);
    EXPECT_EQ(s.rfind("<?xml", 0), 0u) << svg;
    const size_t open = s.find("<svg"), close = s.rfind("</svg>");
    ASSERT_NE(open, std::string::npos) << svg;
    ASSERT_NE(close, std::string::npos) << svg;
    EXPECT_LT(open, close) << svg;
    EXPECT_EQ(s.find("<svg", open + 1), std::string::npos) << svg;  // one root
    EXPECT_EQ(s.find_first_not_of(" \n", close + 6), std::string::npos) << svg;
  }
  // Re-running reuses finished stages (no RL step runs again).
  r = run_cli("demo --preset micro --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "finished earlier, reused")) << r.output;
  EXPECT_FALSE(contains(r.output, "gapg step 1/")) << r.output;
  // GAPG asked for with other options (the paper's filter alone) is not reused silently.
  r = run_cli("demo --preset micro --paper-gapg --threads 1 --out " + out);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, "rl-gapg was trained with call_rate_control = \"dual\"")) << r.output;
  fs::remove_all(out);
}

TEST(CliTest, DemoWithMissingReferenceCheckpointSaysWhatToRun) {
  auto preset =
      nlohmann::json::parse(handoff::read_file(std::string(HANDOFF_SOURCE_DIR) + "/configs/quick.json"));
  preset["demo"]["device_model"] = "/nonexistent/device-chain";
  const auto path = tmp("missing.json");
  handoff::write_file_atomic(path, preset.dump());
  auto r = run_cli("demo --preset " + path + " --out " + tmp("demo_missing"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "/nonexistent/device-chain")) << r.output;
  EXPECT_TRUE(contains(r.output, "reproduce-models.sh")) << r.output;

  // A corrupt copy (weights truncated) and a copy whose tokenizer lacks a digit the task writes: both named,
  // both pointing at the script, neither a crash.
  const std::string src = std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
  const std::string corrupt = tmp("corrupt_ref"), alphabet = tmp("alphabet_ref");
  fs::copy(src, corrupt);
  fs::copy(src, alphabet);
  fs::resize_file(corrupt + "/model.safetensors", fs::file_size(corrupt + "/model.safetensors") / 2);
  auto tok = nlohmann::json::parse(handoff::read_file(alphabet + "/tokenizer.json"));
  tok["model"]["vocab"].erase("7");
  handoff::write_file_atomic(alphabet + "/tokenizer.json", tok.dump());
  for (const std::string& ref : {corrupt, alphabet}) {
    preset["demo"]["device_model"] = ref;
    handoff::write_file_atomic(path, preset.dump());
    r = run_cli("demo --preset " + path + " --out " + tmp("demo_bad_ref"));
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, "reference checkpoint " + ref)) << r.output;
    EXPECT_TRUE(contains(r.output, "reproduce-models.sh")) << r.output;
  }
  fs::remove_all(corrupt);
  fs::remove_all(alphabet);
  fs::remove_all(tmp("demo_bad_ref"));
  fs::remove(path);
}

TEST(CliTest, DemoWithBadAlgoOptionsOrRateSweepFailsBeforeWritingAnything) {
  auto preset =
      nlohmann::json::parse(handoff::read_file(std::string(HANDOFF_SOURCE_DIR) + "/configs/quick.json"));
  const auto path = tmp("bad_algo_options.json"), out = tmp("demo_bad_algo_options");
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"ppo", nlohmann::json::object()}}, "unknown RL algorithm"},
      {{{"gapg", {{"dual_step", 0}}}}, "preset demo.algo_options.gapg: dual_step"},
      {{{"gapg", {{"no_such_option", 1}}}}, "no_such_option"},
      {{{"task-tuning", {{"call_rate_control", "dual"}}}}, "needs a method that can call the cloud"},
      {{{"gapg", 3}}, "must be an object"}};
  // The demo with this preset fails, names what is wrong, and writes nothing.
  auto expect_refused = [&](const std::string& fragment) {
    handoff::write_file_atomic(path, preset.dump());
    auto r = run_cli("demo --preset " + path + " --out " + out);
    EXPECT_EQ(r.code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, fragment)) << fragment << "\n" << r.output;
    EXPECT_FALSE(fs::exists(out)) << fragment;
  };
  for (const auto& [opts, fragment] : cases) {
    preset["demo"]["algo_options"] = opts;
    expect_refused(fragment);
  }
  // The rate sweep: a rate outside (0, 1), one given twice, or the main rate again.
  preset["demo"].erase("algo_options");
  const std::vector<std::pair<std::vector<double>, std::string>> sweeps = {
      {{0.0}, "must lie in (0, 1)"}, {{0.2, 0.2001}, "appears twice"}, {{0.3}, "is demo.max_call_rate"}};
  for (const auto& [rates, fragment] : sweeps) {
    preset["demo"]["gapg_rate_sweep"] = rates;
    expect_refused(fragment);
  }
  fs::remove(path);
}

TEST(CliTest, ReferenceCheckpointsLoadAndEvaluate) {
  for (const std::string name : {"device-chain", "cloud-chain"}) {
    auto r = run_cli("eval --model " + std::string(HANDOFF_SOURCE_DIR) + "/models/" + name +
                     " --difficulties 1 --n 4 --sample-temperature 0 --threads 1");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_TRUE(contains(r.output, "| 1 | 4 |")) << r.output;
  }
  auto r = run_cli("eval --model " + tmp("nothing_here"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "does not exist")) << r.output;
}

// The device-alone table decodes as asked: the knob at 0 hands off every item, --no-handoff none, where the
// plain model's sampled pass does hand off (so the ban is what makes it 0); contradictory flags are refused.
TEST(CliTest, EvalAloneAppliesTheKnobOrBansTheHandoff) {
  const std::string dev = std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
  const std::string base = "eval --model " + dev + " --difficulties 8 --n 24 --threads 1 --json ";
  const auto rates = [&](const std::string& flags) {
    const auto out = tmp("eval_alone.json");
    auto r = run_cli(base + out + " " + flags);
    EXPECT_EQ(r.code, 0) << r.output;
    const auto j = nlohmann::json::parse(handoff::read_file(out))[0];
    fs::remove(out);
    // No sampled pass (--sample-temperature 0): no sampled rate, not a rate of 0.
    const auto& sampled = j["sampled_handoff_rate"];
    return std::make_pair(j["handoff_rate"].get<double>(), sampled.is_null() ? -1.0 : sampled.get<double>());
  };
  const auto plain = rates("");
  EXPECT_GT(plain.second, 0.0);  // the reference device hands off when sampled at T = 1
  const auto knob = rates("--handoff-threshold 0 --sample-temperature 0");
  EXPECT_DOUBLE_EQ(knob.first, 1.0);
  EXPECT_DOUBLE_EQ(knob.second, -1.0);
  const auto banned = rates("--no-handoff");
  EXPECT_DOUBLE_EQ(banned.first, 0.0);
  EXPECT_DOUBLE_EQ(banned.second, 0.0);
  auto r = run_cli(base + tmp("x.json") + " --no-handoff --handoff-threshold 0.5");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "contradict")) << r.output;
  r = run_cli(base + tmp("x.json") + " --split valid");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--split")) << r.output;
  r = run_cli(base + tmp("x.json") + " --split train --sample-temperature 0");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "(train split, 24 per difficulty")) << r.output;
  EXPECT_TRUE(contains(r.output, "| — | — |")) << r.output;  // the table's sampled columns
  fs::remove(tmp("x.json"));
  r = run_cli(base + tmp("x.json") + " --no-handoff --cloud http://127.0.0.1:9/v1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "--no-handoff evaluates the device alone")) << r.output;
}

// `handoff route fit|eval` on the reference device model with a handful of items: the file holds what was
// fit, eval reads it back (scores and decisions per item), and bad input is a clear error. The routers and
// the router file on hand-made data, and more broken files: test_route.cpp.
TEST(CliTest, RouteFitThenEvalAndBadRouterFiles) {
  const std::string dev = std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
  const auto file = tmp("router.json");
  auto r = run_cli("route fit --router prompt-router --device " + dev +
                   " --difficulties 1,6 --n 4 --rate 0.25 --threads 1 --out " + file);
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(handoff::read_file(file));
  EXPECT_EQ(j["router"], "prompt-router");
  EXPECT_EQ(j["task"], "chain");
  EXPECT_EQ(j["call_rate_target"].get<double>(), 0.25);
  const auto config = nlohmann::json::parse(handoff::read_file(dev + "/config.json"));
  EXPECT_EQ(j["state"]["weight"].size(), config["hidden_size"].get<size_t>());  // one weight per feature
  r = run_cli("route eval --router " + file + " --difficulties 1,6 --n 3 --scores --threads 1");
  ASSERT_EQ(r.code, 0) << r.output;
  for (int i = 0; i < 6; ++i)
    EXPECT_TRUE(contains(r.output, "item " + std::to_string(i) + "\tscore ")) << r.output;
  EXPECT_TRUE(contains(r.output, "prompt-router (threshold")) << r.output;
  EXPECT_TRUE(contains(r.output, "on 6 held-out items of chain: call rate")) << r.output;
  // Bad input: unknown router, corrupt file, a probe with a malformed state.
  r = run_cli("route fit --router wizard --device " + dev + " --out " + tmp("w.json"));
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "unknown router 'wizard'")) << r.output;
  EXPECT_TRUE(contains(r.output, "prompt-router")) << r.output;
  const auto corrupt = tmp("corrupt.json");
  handoff::write_file_atomic(corrupt, "{\"format\": \"handoff-router\", \"version\": 1, \"rout");
  r = run_cli("route eval --router " + corrupt);
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "router file " + corrupt + ": not valid JSON")) << r.output;
  auto bad = nlohmann::json::parse(handoff::read_file(file));
  bad["state"]["weight"].erase(0);
  handoff::write_file_atomic(corrupt, bad.dump());
  r = run_cli("route eval --router " + corrupt + " --n 1");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.output, "linear probe: 'mean' is missing or has the wrong length")) << r.output;
  fs::remove_all(file);
  fs::remove_all(corrupt);
}
