// Data-parallel training on c10d (issue 19): the torchrun variables, and `handoff sft` run as 2 processes on
// loopback (Gloo) giving the weights of 1 process; bad launches, a rank killed mid-run, torchrun's restart
// and two "nodes" on one machine.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "common/atomic_file.h"
#include "dist/launch_env.h"
#include "io/checkpoint.h"
#include "test_support.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::free_port;
using handoff::testing::TempDir;
namespace fs = std::filesystem;

namespace {

LaunchEnv env_of(const std::map<std::string, std::string>& vars) {
  return launch_env_from([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

// Runs a shell command line, returns its exit code and combined output.
handoff::testing::CliResult shell(const std::string& cmd) {
  handoff::testing::CliResult r;
  FILE* p = popen(("{ " + cmd + "; } 2>&1").c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kBin = HANDOFF_BINARY;
// A short SFT run of the micro preset: enough steps that the weights move far from their start.
std::string sft_args(const std::string& out, int steps = 30, int checkpoint_every = 10) {
  return " sft --role device --preset micro --task chain --steps " + std::to_string(steps) +
         " --batch-size 16 --checkpoint-every " + std::to_string(checkpoint_every) + " --out " + out;
}

std::string rank_env(int rank, int world, int port, const std::string& extra = "") {
  return "RANK=" + std::to_string(rank) + " WORLD_SIZE=" + std::to_string(world) +
         " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " HANDOFF_DIST_TIMEOUT=30 " + extra +
         " ";
}

// Largest |a − b| over every tensor of two checkpoints (and the largest |a|, for scale).
std::pair<double, double> weight_distance(const std::string& a, const std::string& b) {
  auto ma = load_checkpoint(a).model, mb = load_checkpoint(b).model;
  auto pa = ma->named_parameters(), pb = mb->named_parameters();
  double worst = 0, scale = 0;
  for (const auto& kv : pa) {
    worst = std::max(worst, (kv.value() - pb[kv.key()]).abs().max().item<double>());
    scale = std::max(scale, kv.value().abs().max().item<double>());
  }
  return {worst, scale};
}

int64_t saved_step(const std::string& model_dir) {
  if (!file_exists(model_dir + "/trainer_state.json")) return -1;
  return nlohmann::json::parse(read_file(model_dir + "/trainer_state.json")).at("step").get<int64_t>();
}

}  // namespace

TEST(LaunchEnvTest, ReadsTheTorchrunVariables) {
  EXPECT_FALSE(env_of({}).distributed());
  const LaunchEnv e = env_of({{"RANK", "3"},
                              {"WORLD_SIZE", "4"},
                              {"LOCAL_RANK", "1"},
                              {"LOCAL_WORLD_SIZE", "2"},
                              {"MASTER_ADDR", "10.0.0.1"},
                              {"MASTER_PORT", "29500"},
                              {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                              {"TORCHELASTIC_RESTART_COUNT", "2"},
                              {"HANDOFF_DIST_TIMEOUT", "7"}});
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_TRUE(e.agent_store);
  EXPECT_EQ(e.restart_count, 2);
  EXPECT_EQ(e.timeout, std::chrono::seconds(7));
  // A world of one needs no rendezvous.
  EXPECT_FALSE(env_of({{"RANK", "0"}, {"WORLD_SIZE", "1"}}).distributed());
}

TEST(LaunchEnvTest, InconsistentVariablesAreErrorsNamingThem) {
  const std::map<std::string, std::string> ok = {
      {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& k, const std::string& v) {
    auto m = ok;
    if (v.empty()) {
      m.erase(k);
    } else {
      m[k] = v;
    }
    return error_of([&] { env_of(m); });
  };
  EXPECT_NE(with("RANK", "2").find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos);
  EXPECT_NE(with("WORLD_SIZE", "").find("RANK is set but WORLD_SIZE is not"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "").find("MASTER_PORT is not set"), std::string::npos);
  EXPECT_NE(with("MASTER_ADDR", "").find("MASTER_ADDR is not set"), std::string::npos);
  EXPECT_NE(with("MASTER_PORT", "70000").find("MASTER_PORT='70000'"), std::string::npos);
  EXPECT_NE(with("RANK", "one").find("RANK='one' is not an integer"), std::string::npos);
  EXPECT_NE(with("LOCAL_RANK", "2").find("LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"), std::string::npos);
  EXPECT_NE(with("HANDOFF_DIST_TIMEOUT", "0").find("HANDOFF_DIST_TIMEOUT='0'"), std::string::npos);
  EXPECT_EQ(with("RANK", "0"), "(no error)");
}

// The proof that sharding changes nothing: the same seed and global batch on 2 processes (each half of every
// batch, gradients summed by Gloo) and on 1 give the same weights up to the order of float sums.
TEST(DistSftTest, TwoProcessesGiveTheWeightsOfOne) {
  TempDir tmp("dist_equal");
  const std::string one = tmp.str("one"), two = tmp.str("two");
  auto r = shell(kBin + sft_args(one) + " --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  const int port = free_port();
  r = shell("(" + rank_env(1, 2, port) + kBin + sft_args(two) + " > " + tmp.str("rank1.log") + " 2>&1 &); " +
            rank_env(0, 2, port) + kBin + sft_args(two) + "; rc=$?; wait; sleep 1; cat " +
            tmp.str("rank1.log") + "; exit $rc");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("data-parallel: 2 processes"), std::string::npos) << r.output;
  const auto [worst, scale] = weight_distance(one + "/model", two + "/model");
  std::printf("1 vs 2 processes after 30 SFT steps: max |Δw| %.3g (max |w| %.3g)\n", worst, scale);
  EXPECT_LT(worst, 1e-4 * scale);
  EXPECT_GT(scale, 0.1);
  const auto st = nlohmann::json::parse(read_file(two + "/model/trainer_state.json"));
  EXPECT_EQ(st.at("world_size"), 2);
  EXPECT_EQ(st.at("step"), 30);
  // Rank 0 alone logs: one metrics line per logged step (micro logs every 20: steps 20 and 30).
  std::ifstream metrics(two + "/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(metrics, l);) ++lines;
  EXPECT_EQ(lines, 2);

  // Two "nodes" on one machine: two torchrun invocations meeting at 127.0.0.1, one process each. Debian's
  // torchrun 1.13 needs non-zero redirect/tee values under Python 3.11 (-r 1 -t 2 --log_dir).
  const std::string nodes = tmp.str("nodes");
  const int node_port = free_port();
  auto torchrun = [&](int node) {
    return "torchrun --nnodes 2 --node_rank " + std::to_string(node) +
           " --nproc_per_node 1 --master_addr 127.0.0.1 --master_port " + std::to_string(node_port) +
           " -r 1 -t 2 --log_dir " + tmp.str("logs" + std::to_string(node)) + " --no_python " + kBin +
           sft_args(nodes);
  };
  r = shell("(" + torchrun(1) + " > " + tmp.str("node1.log") + " 2>&1 &); " + torchrun(0) +
            "; rc=$?; wait; sleep 1; cat " + tmp.str("node1.log") + "; exit $rc");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto [worst_nodes, scale_nodes] = weight_distance(one + "/model", nodes + "/model");
  std::printf("1 process vs 2 torchrun nodes: max |dw| %.3g\n", worst_nodes);
  EXPECT_LT(worst_nodes, 1e-4 * scale_nodes);

  // Resumed on one process, the two-process run says so and continues.
  r = shell(kBin + sft_args(two, 40) + " --resume");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("saved by 2 process(es) on 1"), std::string::npos) << r.output;
  EXPECT_EQ(saved_step(two + "/model"), 40);
}

TEST(DistSftTest, BadLaunchesFailBeforeWritingAnything) {
  TempDir tmp("dist_bad");
  const std::string out = tmp.str("run");
  auto r = shell("RANK=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 " + kBin + sft_args(out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("RANK=2 is not below WORLD_SIZE=2"), std::string::npos) << r.output;
  r = shell("RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 " + kBin + sft_args(out));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("MASTER_PORT is not set"), std::string::npos) << r.output;
  // Rank 1 never comes: the rendezvous gives up after HANDOFF_DIST_TIMEOUT.
  const auto t0 = std::chrono::steady_clock::now();
  r = shell(rank_env(0, 2, free_port(), "HANDOFF_DIST_TIMEOUT=2") + kBin + sft_args(out));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("did not complete within 2 s"), std::string::npos) << r.output;
  EXPECT_LT(waited, 20.0);
  EXPECT_FALSE(fs::exists(out));
  // Ranks started with different options refuse to train together.
  const int port = free_port();
  r = shell("(" + rank_env(1, 2, port) + kBin + sft_args(out, 31) + " > " + tmp.str("rank1.log") +
            " 2>&1 &); " + rank_env(0, 2, port) + kBin + sft_args(out, 30) + "; rc=$?; wait; sleep 1; cat " +
            tmp.str("rank1.log") + "; exit $rc");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(
      r.output.find("rank 1 was started with other options or checkpoint than rank 0 (options.steps: 31 "
                    "vs 30)"),
      std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(out + "/model"));
  // ... and so do ranks resuming from different checkpoints (here: saved at different steps).
  const std::string a = tmp.str("a"), b = tmp.str("b");
  ASSERT_EQ(shell(kBin + sft_args(a) + " --stop-at-step 10 --quiet").code, 0);
  ASSERT_EQ(shell(kBin + sft_args(b) + " --stop-at-step 20 --quiet").code, 0);
  const int port2 = free_port();
  r = shell("(" + rank_env(1, 2, port2) + kBin + sft_args(b) + " --resume > " + tmp.str("rank1b.log") +
            " 2>&1 &); " + rank_env(0, 2, port2) + kBin + sft_args(a) +
            " --resume; rc=$?; wait; sleep 1; exit $rc");
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("rank 1 was started with other options or checkpoint than rank 0"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(saved_step(a + "/model"), 10);
  EXPECT_EQ(saved_step(b + "/model"), 20);
}

namespace {

// The reference cloud (models/cloud-chain) on a loopback port, served from this test process.
struct LoopbackCloud {
  std::unique_ptr<ModelServer> server;
  LoopbackCloud() {
    auto responder = std::make_shared<LocalModelResponder>(
        load_checkpoint(std::string(HANDOFF_SOURCE_DIR) + "/models/cloud-chain"), "cloud");
    ServerOptions o;
    o.port = 0;
    o.log = [](const std::string&) {};
    server = std::make_unique<ModelServer>(responder, o);
    server->start();
  }
  std::string url() const { return server->url() + "/v1"; }
};

// GAPG with the call-rate controller and the end-of-run iterate selection: every part that decides over
// the whole batch or measures the greedy rate runs.
std::string gapg_args(const std::string& cloud, const std::string& out) {
  return " train --device " + std::string(HANDOFF_SOURCE_DIR) +
         "/models/device-chain --preset micro --algo gapg --steps 4 --prompts-per-step 8 --group 4 "
         "--call-rate-control dual --dual-two-sided --dual-select-last 0.5 --dual-probe 16 --threads 1 "
         "--cloud " +
         cloud + " --out " + out;
}

std::vector<nlohmann::json> metrics_of(const std::string& run) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(run + "/metrics.jsonl");
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    for (const char* timing :
         {"tokens_per_s", "step_seconds", "rollout_seconds", "update_seconds", "comm_seconds"})
      j.erase(timing);
    lines.push_back(j);
  }
  return lines;
}

size_t lines_of(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

}  // namespace

// GAPG on 2 processes makes the decisions of 1: the same rewards, D¹/D² counts, kept prompts, call rates,
// controller price and selected iterate at every step, the same cloud calls (asked once, by rank 0), and the
// same weights up to the order of float sums.
TEST(DistRlTest, TwoProcessGapgDecidesAsOne) {
  LoopbackCloud cloud;
  TempDir tmp("dist_gapg");
  const std::string one = tmp.str("one"), two = tmp.str("two");
  auto r = shell(kBin + gapg_args(cloud.url(), one) + " --quiet");
  ASSERT_EQ(r.code, 0) << r.output;
  const int port = free_port();
  r = shell("(" + rank_env(1, 2, port) + kBin + gapg_args(cloud.url(), two) + " > " + tmp.str("rank1.log") +
            " 2>&1 &); " + rank_env(0, 2, port) + kBin + gapg_args(cloud.url(), two) +
            "; rc=$?; wait; sleep 1; cat " + tmp.str("rank1.log") + "; exit $rc");
  ASSERT_EQ(r.code, 0) << r.output;
  const auto m1 = metrics_of(one), m2 = metrics_of(two);
  ASSERT_EQ(m1.size(), 4u);
  ASSERT_EQ(m1.size(), m2.size());
  for (size_t i = 0; i < m1.size(); ++i) {
    // The loss is a sum over the ranks' rows: equal up to the order of float sums.
    EXPECT_NEAR(m1[i]["loss"].get<double>(), m2[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
    auto a = m1[i], b = m2[i];
    a.erase("loss");
    b.erase("loss");
    EXPECT_EQ(a, b) << "step " << i + 1;
  }
  EXPECT_EQ(lines_of(one + "/cloud_cache.jsonl"), lines_of(two + "/cloud_cache.jsonl"));
  const auto s1 = nlohmann::json::parse(read_file(one + "/model/trainer_state.json"));
  const auto s2 = nlohmann::json::parse(read_file(two + "/model/trainer_state.json"));
  for (const char* k : {"budget_credit", "cloud_calls", "dual_lambda", "probe_call_rate", "selected_step"})
    EXPECT_EQ(s1.value(k, nlohmann::json()), s2.value(k, nlohmann::json())) << k;
  EXPECT_EQ(s2.at("world_size"), 2);
  // The parts that must agree were exercised: the controller measured, the selection picked, the cloud was
  // asked.
  EXPECT_TRUE(s2.contains("selected_step") && s2.contains("dual_lambda")) << s2.dump();
  EXPECT_GT(s1.at("cloud_calls").get<int64_t>(), 0);
  const auto [worst, scale] = weight_distance(one + "/model", two + "/model");
  std::printf("1 vs 2 processes after 4 GAPG steps: max |dw| %.3g (max |w| %.3g)\n", worst, scale);
  EXPECT_LT(worst, 1e-4 * scale);
}

// A rank killed mid-run: the survivor stops within seconds with an error naming it, and the last checkpoint
// is intact. Under torchrun --max_restarts 1 the job restarts and resumes from that checkpoint to the end.
TEST(DistSftTest, AKilledRankIsNamedAndTorchrunResumesTheJob) {
  TempDir tmp("dist_kill");
  const std::string out = tmp.str("run"), bin = fs::canonical(kBin).string();
  const std::string args = sft_args(out, 1500, 50) + " --resume --log-every 500";
  const std::string wait_checkpoint =
      "for i in $(seq 600); do [ -f " + out + "/model/trainer_state.json ] && break; sleep 0.05; done; ";
  const int port = free_port();
  auto t0 = std::chrono::steady_clock::now();
  auto r =
      shell(rank_env(1, 2, port) + bin + args + " > " + tmp.str("r1.log") + " 2>&1 & p1=$!; " +
            rank_env(0, 2, port) + bin + args + " > " + tmp.str("r0.log") + " 2>&1 & p0=$!; " +
            wait_checkpoint + "kill -9 $p1; wait $p0; echo \"rank 0 exit $?\"; cat " + tmp.str("r0.log"));
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.output.find("rank 0 exit 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rank(s) 1 did not answer within 2 s"), std::string::npos) << r.output;
  EXPECT_LT(secs, 60.0);
  const int64_t kept = saved_step(out + "/model");
  EXPECT_GE(kept, 50);
  EXPECT_LT(kept, 1500);
  EXPECT_NO_THROW(load_checkpoint(out + "/model"));

  fs::remove_all(out);
  const std::string logs = tmp.str("logs");
  r = shell(
      "torchrun --nproc_per_node 2 --max_restarts 1 --master_port " + std::to_string(free_port()) +
      " -r 1 -t 2 --log_dir " + logs + " --no_python " + bin + args + " & tp=$!; " + wait_checkpoint +
      "for p in $(pgrep -f -- '--out " + out + "'); do if [ \"$(readlink /proc/$p/exe)\" = '" + bin +
      "' ]; then kill -9 $p; echo killed worker $p; break; fi; done; wait $tp; echo \"torchrun exit $?\"");
  EXPECT_NE(r.output.find("killed worker"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("torchrun exit 0"), std::string::npos) << r.output;
  EXPECT_EQ(saved_step(out + "/model"), 1500);
  bool restarted = false;
  for (const auto& e : fs::recursive_directory_iterator(logs))
    restarted |= e.path().filename() == "attempt_1";
  EXPECT_TRUE(restarted) << "torchrun did not restart the workers";
}

// `handoff demo --nproc 2`: every RL run under torchrun on 2 processes, deciding as the 1-process demo does
// (the same rewards, call rates and D¹/D² counts at every step of every run).
TEST(DistDemoTest, NprocTrainsEveryRlRunOnTwoProcessesWithTheSameDecisions) {
  TempDir tmp("dist_demo");
  const std::string one = tmp.str("one"), two = tmp.str("two");
  auto r = shell(kBin + " demo --preset micro --fresh --threads 1 --out " + one);
  ASSERT_EQ(r.code, 0) << r.output;
  r = shell(kBin + " demo --preset micro --fresh --threads 1 --nproc 2 --out " + two);
  ASSERT_EQ(r.code, 0) << r.output;
  int runs = 0;
  for (const auto& e : fs::directory_iterator(two)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("rl-", 0) != 0 || !e.is_directory()) continue;
    ++runs;
    const auto st = nlohmann::json::parse(read_file(e.path().string() + "/model/trainer_state.json"));
    EXPECT_EQ(st.at("world_size"), 2) << name;
    EXPECT_TRUE(fs::exists(e.path() / "torchrun-logs")) << name;
    const auto m1 = metrics_of(one + "/" + name), m2 = metrics_of(e.path().string());
    ASSERT_EQ(m1.size(), m2.size()) << name;
    for (size_t i = 0; i < m1.size(); ++i) {
      auto a = m1[i], b = m2[i];
      a.erase("loss");
      b.erase("loss");
      EXPECT_EQ(a, b) << name << " step " << i + 1;
    }
  }
  EXPECT_GE(runs, 3);
  // Without torchrun on PATH, --nproc is an error before anything is written.
  const std::string none = tmp.str("none");
  r = shell("PATH=/nonexistent " + kBin + " demo --preset micro --nproc 2 --out " + none);
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("torchrun, which is not on PATH"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(none));
}
