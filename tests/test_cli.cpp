// The CLI: bad input gives a clear message and a non-zero exit; a tiny sft → eval round trip works.
#include <gtest/gtest.h>

#include <cmath>

#include <filesystem>

#include "cli_runner.h"
#include "common/atomic_file.h"

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
  fs::remove_all(tmp("x"));
  fs::remove(bad_preset);
}

TEST(CliTest, InfoReportsBlasAndGemm) {
  auto r = run_cli("info --gemm-size 256");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "BLAS:")) << r.output;
  EXPECT_TRUE(contains(r.output, "GFLOP/s")) << r.output;
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

TEST(CliTest, MicroDemoRunsEveryStageAndReportsEveryMethod) {
  const auto out = tmp("demo");
  auto r = run_cli("demo --preset micro --fresh --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "stage 6/6")) << r.output;
  const std::string report = handoff::read_file(out + "/report.md");
  for (const std::string method :
       {"device-only (task-tuned)", "cloud-only", "naive offloading", "router (prompt classifier)",
        "post-inference router", "confidence threshold", "oracle", "GAPG (ours)", "collab-grpo"})
    EXPECT_TRUE(contains(report, method)) << method;
  auto results = nlohmann::json::parse(handoff::read_file(out + "/results.json"));
  EXPECT_GE(results["methods"].size(), 9u);
  for (const auto& m : results["methods"]) {
    EXPECT_GE(m["accuracy"].get<double>(), 0.0);
    EXPECT_LE(m["call_rate"].get<double>(), 1.0);
    // Latency split: a method that calls the cloud pays measured round trips; one that never calls pays none.
    const double cloud_ms = m["cloud_ms_per_query"].get<double>();
    if (m["call_rate"].get<double>() > 0) {
      EXPECT_GT(cloud_ms, 0.0) << m["method"];
    } else {
      EXPECT_EQ(cloud_ms, 0.0) << m["method"];
    }
    if (m["method"] != "cloud-only") {
      EXPECT_GT(m["device_ms_per_query"].get<double>(), 0.0) << m["method"];
    }
  }
  // Two RL seeds (micro preset): every method trained twice, and the report gives the spread per method with
  // the main table's numbers as seed 1's.
  EXPECT_TRUE(fs::exists(out + "/rl-gapg-seed2/model/model.safetensors"));
  EXPECT_TRUE(contains(report, "## Across RL seeds (1, 2)")) << report;
  ASSERT_EQ(results["seeds"].size(), results["methods"].size());
  for (size_t i = 0; i < results["seeds"].size(); ++i) {
    const auto& sp = results["seeds"][i];
    ASSERT_EQ(sp["accuracy"].size(), 2u) << sp.dump();
    if (sp["method"].get<std::string>().rfind("GAPG (ours) + hand-off threshold", 0) != 0) {
      EXPECT_EQ(sp["method"], results["methods"][i]["method"]);
    }
    EXPECT_DOUBLE_EQ(sp["accuracy"][0].get<double>(), results["methods"][i]["accuracy"].get<double>());
    const double a0 = sp["accuracy"][0].get<double>(), a1 = sp["accuracy"][1].get<double>();
    EXPECT_NEAR(sp["accuracy_mean"].get<double>(), (a0 + a1) / 2, 1e-12);
    EXPECT_NEAR(sp["accuracy_sd"].get<double>(), std::abs(a0 - a1) / std::sqrt(2.0), 1e-12);
  }
  for (const std::string svg :
       {"accuracy_vs_call_rate.svg", "training_call_rate.svg", "training_reward.svg"}) {
    const std::string s = handoff::read_file(out + "/" + svg);
    EXPECT_EQ(s.rfind("<?xml", 0), 0u) << svg;
    EXPECT_TRUE(contains(s, "</svg>")) << svg;
  }
  // Re-running reuses finished stages (no RL step runs again).
  r = run_cli("demo --preset micro --threads 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "finished earlier, reused")) << r.output;
  EXPECT_FALSE(contains(r.output, "gapg step 1/")) << r.output;
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
