// SFT: the loss falls on a tiny task, the hand-off warm-start format, and resume equals an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "rl/sft.h"
#include "tiny_model.h"

using namespace handoff;
namespace fs = std::filesystem;

namespace {

ModelConfig tiny() {
  return handoff::testing::tiny_model_config();
}

SftOptions opts(int64_t steps) {
  SftOptions o;
  o.task = "chain";
  o.difficulties = {1, 2};
  o.steps = steps;
  o.batch_size = 16;
  o.lr = 3e-3;
  o.warmup_steps = 10;
  o.log_every = 10;
  o.checkpoint_every = 1000;
  o.handoff_fraction = 0.3;
  o.quiet = true;
  return o;
}

std::string tmp(const std::string& name) {
  auto p = (fs::temp_directory_path() / ("handoff_sft_" + name)).string();
  fs::remove_all(p);
  return p;
}

}  // namespace

TEST(SftTest, HandoffTargetIsASolutionPrefixThenTheMarker) {
  std::mt19937_64 rng(1);
  const std::string sol = "23+4=27 27-7=20 Answer: 20";
  EXPECT_EQ(sft_target(sol, false, rng), sol);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sft_target(sol, true, rng));
  EXPECT_EQ(seen, (std::set<std::string>{"<handoff>", "23+4=27 <handoff>", "23+4=27 27-7=20 <handoff>"}));
}

TEST(SftTest, LossFallsBelowThresholdOnTinyTask) {
  const auto dir = tmp("loss");
  auto r = run_sft(tiny(), opts(400), dir, false);
  std::printf("final loss %.4f\n", r.final_loss);
  EXPECT_EQ(r.steps_done, 400);
  // ln(100) ≈ 4.6 at initialisation; the prompt-masked loss of a model that has learned the format and the
  // digits' distribution is below 1.1 (measured 0.93 at 400 steps of batch 16).
  EXPECT_LT(r.final_loss, 1.1);
  EXPECT_TRUE(fs::exists(dir + "/model/model.safetensors"));
  std::ifstream metrics(dir + "/metrics.jsonl");
  int lines = 0;
  for (std::string l; std::getline(metrics, l);) ++lines;
  EXPECT_EQ(lines, 40);
  fs::remove_all(dir);
}

TEST(SftTest, ResumeEqualsUninterruptedRun) {
  const auto a = tmp("full"), b = tmp("resumed");
  run_sft(tiny(), opts(40), a, false);
  auto o = opts(40);
  o.stop_at_step = 20;
  auto first = run_sft(tiny(), o, b, false);
  EXPECT_EQ(first.steps_done, 20);
  o.stop_at_step = -1;
  auto second = run_sft(tiny(), o, b, /*resume=*/true);
  EXPECT_EQ(second.steps_done, 40);
  auto ma = load_checkpoint(a + "/model"), mb = load_checkpoint(b + "/model");
  auto pa = ma.model->named_parameters(), pb = mb.model->named_parameters();
  for (auto& p : pa) EXPECT_LT((p.value() - pb[p.key()]).abs().max().item<double>(), 1e-6) << p.key();
  // The metrics file holds one history: steps 10..40, no duplicates.
  std::ifstream metrics(b + "/metrics.jsonl");
  std::vector<int64_t> steps;
  for (std::string l; std::getline(metrics, l);)
    steps.push_back(nlohmann::json::parse(l)["step"].get<int64_t>());
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 40}));
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(SftTest, BadOptionsAreErrors) {
  auto o = opts(10);
  o.difficulties = {99};
  EXPECT_THROW(run_sft(tiny(), o, tmp("bad"), false), Error);
  o = opts(10);
  o.task = "nosuchtask";
  EXPECT_THROW(run_sft(tiny(), o, tmp("bad"), false), Error);
  o = opts(10);
  o.lr = -1;
  EXPECT_THROW(run_sft(tiny(), o, tmp("bad"), false), Error);
  EXPECT_THROW(SftOptions::from_json({{"stpes", 3}}, "test"), Error);
  fs::remove_all(tmp("bad"));
}
