// SFT: the loss falls on a tiny task, the hand-off warm-start format, and resume equals an uninterrupted run.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <torch/torch.h>

#include "cli_runner.h"
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
  EXPECT_EQ(sft_target(Protocol{}, sol, false, rng), sol);
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) seen.insert(sft_target(Protocol{}, sol, true, rng));
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

// Length-sorted micro-batches (issue 18): the same steps up to float summation order, with far less of the
// computed tokens spent on padding.
TEST(SftTest, MicroBatchesByLengthTrainTheSameStepsWithLessPadding) {
  const auto whole = tmp("whole"), parts = tmp("parts");
  run_sft(tiny(), opts(30), whole, false);
  auto o = opts(30);
  o.update_tokens = 128;
  run_sft(tiny(), o, parts, false);
  auto pa = load_checkpoint(whole + "/model").model->named_parameters();
  auto pb = load_checkpoint(parts + "/model").model->named_parameters();
  double worst = 0;
  for (auto& p : pa) worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  EXPECT_LT(worst, 1e-4);
  EXPECT_GT(worst, 0.0);  // really another summation order, not the whole batch again
  auto padding = [](const std::string& dir) {
    std::ifstream in(dir + "/metrics.jsonl");
    std::string last;
    for (std::string l; std::getline(in, l);) last = l;
    return nlohmann::json::parse(last).at("padding_fraction").get<double>();
  };
  std::printf("padding: whole batch %.3f, micro-batches of <= 128 tokens %.3f\n", padding(whole),
              padding(parts));
  EXPECT_GT(padding(whole), 0.2);
  EXPECT_LT(padding(parts), 0.5 * padding(whole));
  o.update_tokens = -1;
  EXPECT_THROW(o.validate(), Error);
  fs::remove_all(whole);
  fs::remove_all(parts);
}

// Data threads (runtime/data_threads.h, the training default). With micro-batches the threads add the
// micro-batches' gradients in order: the same bytes as one thread. Without, each thread takes a share of the
// rows: the same steps up to summation order, and the same bytes again for the same thread count.
TEST(SftTest, DataThreadsGiveOneThreadsBytesWithMicroBatchesAndReproduce) {
  const auto one = tmp("dt1"), two = tmp("dt2"), again = tmp("dt2b"), parts1 = tmp("dtp1"),
             parts2 = tmp("dtp2");
  auto o = opts(30);
  o.update_tokens = 0;  // the whole batch at once (the default is micro-batches)
  run_sft(tiny(), o, one, false);
  o.update_tokens = 128;
  run_sft(tiny(), o, parts1, false);
  o.data_threads = 2;
  run_sft(tiny(), o, parts2, false);
  o.update_tokens = 0;
  run_sft(tiny(), o, two, false);
  run_sft(tiny(), o, again, false);
  auto params = [](const std::string& dir) {
    return load_checkpoint(dir + "/model").model->named_parameters();
  };
  auto pa = params(one), pb = params(two), pc = params(again), p1 = params(parts1), p2 = params(parts2);
  double shares = 0, repeat = 0, micro = 0;
  for (auto& p : pa) {
    shares = std::max(shares, (p.value() - pb[p.key()]).abs().max().item<double>());
    repeat = std::max(repeat, (pb[p.key()] - pc[p.key()]).abs().max().item<double>());
    micro = std::max(micro, (p1[p.key()] - p2[p.key()]).abs().max().item<double>());
  }
  EXPECT_EQ(micro, 0.0);
  EXPECT_LT(shares, 1e-4);
  EXPECT_GT(shares, 0.0);  // really two shares' sums, not the batch on one
  EXPECT_EQ(repeat, 0.0);
  for (const auto& d : {one, two, again, parts1, parts2}) fs::remove_all(d);
}

// The reference device's card command (models/device-chain/README.md) retrains the committed checkpoint only
// while SFT sums as it did: the shared-prompt pass of the policy update, reached by SFT through a default
// argument, once moved it from 0.345 to 0.189 greedy unnoticed. With the portable kernels: its first 60
// steps' weights by sha256 — the same at 448a849, whose 900 steps gave the committed bytes. With a CPU's own
// kernels (no AVX2/FMA, where the bytes differ by design): the command run twice gives the same bytes.
TEST(SftTest, TheReferenceDeviceRecipeKeepsItsBytes) {
  auto train = [](const std::string& dir) {
    auto r = handoff::testing::run_cli(
        "sft --role device --preset quick --steps 900 --stop-at-step 60 --update-tokens 0 --threads 1 "
        "--quiet "
        "--out " +
        dir);
    EXPECT_EQ(r.code, 0) << r.output;
    auto sha = handoff::testing::run_cli_shell("sha256sum " + dir + "/model/model.safetensors");
    EXPECT_EQ(sha.code, 0) << sha.output;
    return sha.output.substr(0, 64);
  };
  const auto dir = tmp("reference-recipe");
  const std::string sha = train(dir);
  const auto state = nlohmann::json::parse(read_file(dir + "/model/trainer_state.json"));
  if (state.value("kernels", "").rfind("portable", 0) == 0) {
    EXPECT_EQ(sha, "a314a378a387237a0a2510e0e6f20ac6d889ae6f0cee2bfc03678586fd4090e4");
  } else {
    const auto again = tmp("reference-recipe-again");
    EXPECT_EQ(train(again), sha) << "kernels " << state.value("kernels", "");
    fs::remove_all(again);
  }
  fs::remove_all(dir);
}

// A run in a protocol records it; resuming without --protocol keeps it, naming another is refused.
TEST(SftTest, ResumeKeepsTheRunsProtocol) {
  const auto dir = tmp("protocol");
  auto o = opts(20);
  o.protocol = "paper";
  o.stop_at_step = 10;
  run_sft(tiny(), o, dir, false);
  EXPECT_EQ(recorded_protocol(dir).name, "paper");
  EXPECT_EQ(recorded_protocol(dir + "/model").name, "paper");
  o.stop_at_step = -1;
  o.protocol = "handoff";
  EXPECT_THROW(run_sft(tiny(), o, dir, true), Error);
  o.protocol = "";
  EXPECT_EQ(run_sft(tiny(), o, dir, true).steps_done, 20);
  EXPECT_EQ(recorded_protocol(dir + "/model").name, "paper");
  fs::remove_all(dir);
}

// A kill at any moment of the save at step 30 (issue 16): resume continues from the newest complete
// checkpoint and ends with exactly the uninterrupted run's weights and one metrics history.
TEST(SftTest, ResumeRecoversFromEveryMomentOfASave) {
  const auto full = tmp("every_full"), s20 = tmp("every_20"), s30 = tmp("every_30");
  run_sft(tiny(), opts(40), full, false);
  auto o = opts(40);
  o.stop_at_step = 20;
  run_sft(tiny(), o, s20, false);
  o.stop_at_step = 30;
  run_sft(tiny(), o, s30, false);
  auto reference = load_checkpoint(full + "/model").model->named_parameters();
  struct State {
    const char* what;
    std::string model, model_tmp, model_old;  // source run directories ("" = absent)
    bool tmp_partial;
  };
  const State states[] = {
      {"writing model.tmp", s20, s30, "", true},
      {"between the renames", "", s30, s20, false},
      {"after the second rename", s30, "", s20, false},
      {"after the exchange", s30, s20, "", false},
  };
  for (const State& st : states) {
    const auto run = tmp("every_run");
    fs::create_directories(run);
    fs::copy_file(s30 + "/metrics.jsonl", run + "/metrics.jsonl");
    for (auto [src, leaf] :
         {std::pair{st.model, "model"}, {st.model_tmp, "model.tmp"}, {st.model_old, "model.old"}})
      if (!src.empty()) fs::copy(src + "/model", run + "/" + leaf, fs::copy_options::recursive);
    if (st.tmp_partial) fs::remove(run + "/model.tmp/model.safetensors");
    o.stop_at_step = -1;
    EXPECT_EQ(run_sft(tiny(), o, run, /*resume=*/true).steps_done, 40) << st.what;
    auto got = load_checkpoint(run + "/model").model->named_parameters();
    for (auto& p : reference)
      EXPECT_LT((p.value() - got[p.key()]).abs().max().item<double>(), 1e-6) << st.what << " " << p.key();
    std::ifstream metrics(run + "/metrics.jsonl");
    std::vector<int64_t> steps;
    for (std::string l; std::getline(metrics, l);)
      steps.push_back(nlohmann::json::parse(l)["step"].get<int64_t>());
    EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 40})) << st.what;
    EXPECT_FALSE(fs::exists(run + "/model.old")) << st.what;
    fs::remove_all(run);
  }
  // A model directory that is not a training checkpoint is refused, not silently retrained from step 0.
  const auto foreign = tmp("every_foreign");
  fs::create_directories(foreign);
  fs::copy(s30 + "/model", foreign + "/model", fs::copy_options::recursive);
  fs::copy_file(s30 + "/metrics.jsonl", foreign + "/metrics.jsonl");
  fs::remove(foreign + "/model/trainer_state.json");
  const std::string metrics_before = read_file(foreign + "/metrics.jsonl");
  try {
    run_sft(tiny(), o, foreign, /*resume=*/true);
    ADD_FAILURE() << "resuming a model without trainer state did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("trainer_state.json"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(foreign + "/metrics.jsonl"), metrics_before);
  for (const auto& d : {full, s20, s30, foreign}) fs::remove_all(d);
}

// A GSM8K question with a character the character tokenizer lacks (a curly apostrophe): the error names the
// file and line of that question (issue 16), not just the tokenizer's offset.
TEST(SftTest, AQuestionTheTokenizerCannotEncodeIsNamedByFileAndLine) {
  const auto dir = tmp("nonascii");
  fs::create_directories(dir);
  const std::string path = dir + "/gsm.jsonl";
  {
    std::ofstream out(path);
    for (int i = 0; i < 20; ++i)
      out << nlohmann::json({{"question", "Janet\u2019s ducks lay " + std::to_string(i) + " eggs."},
                             {"answer", std::to_string(i) + "+1=" + std::to_string(i + 1) + "\n#### " +
                                            std::to_string(i + 1)}})
                 .dump()
          << "\n";
  }
  auto o = opts(2);
  o.task = "gsm8k:" + path;
  o.difficulties = {};
  try {
    run_sft(tiny(), o, dir + "/run", false);
    ADD_FAILURE() << "a question the tokenizer cannot encode did not throw";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path + ":"), std::string::npos) << msg;
    EXPECT_NE(msg.find("cannot be encoded"), std::string::npos) << msg;
  }
  fs::remove_all(dir);
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
