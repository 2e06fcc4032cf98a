// RL trainer end to end on tiny models with a real loopback cloud: steps run, metrics are logged, resume
// equals an uninterrupted run, and bad input / a failing cloud give clear errors with the checkpoint intact.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "rl/pure/budget.h"
#include "rl/rl_step.h"
#include "rl/rl_trainer.h"
#include "rl/sft.h"
#include "tiny_model.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
namespace fs = std::filesystem;

namespace {

std::string tmp(const std::string& name) {
  auto p = (fs::temp_directory_path() / ("handoff_rl_" + name)).string();
  fs::remove_all(p);
  return p;
}

std::string tiny_checkpoint(const std::string& name, int seed) {
  const auto dir = tmp(name);
  const ModelConfig c = handoff::testing::tiny_model_config();
  torch::manual_seed(seed);
  CausalLM m(c);
  save_checkpoint(dir, m, CharTokenizer());
  return dir;
}

// A responder that serves the tiny cloud model and fails (HTTP 500) once `fail_after` requests were served.
class FlakyResponder : public Responder {
 public:
  FlakyResponder(std::shared_ptr<LocalModelResponder> inner, int fail_after)
      : inner_(inner), fail_after_(fail_after) {}
  std::vector<std::string> models() const override { return inner_->models(); }
  GenerationResult respond(const ChatCompletionRequest& r) override {
    const int n = served_++;
    if (fail_after_ >= 0 && n >= fail_after_) throw Error("cloud model crashed (test)");
    return inner_->respond(r);
  }
  GenerationResult respond(const CompletionRequest& r) override { return inner_->respond(r); }
  std::atomic<int> served_{0};

 private:
  std::shared_ptr<LocalModelResponder> inner_;
  int fail_after_;
};

struct Cloud {
  std::shared_ptr<FlakyResponder> responder;
  std::unique_ptr<ModelServer> server;
  explicit Cloud(int fail_after = -1) {
    static const std::string dir = tiny_checkpoint("cloud", 7);
    auto inner = std::make_shared<LocalModelResponder>(load_checkpoint(dir), "cloud");
    responder = std::make_shared<FlakyResponder>(inner, fail_after);
    ServerOptions o;
    o.port = 0;
    o.log = [](const std::string&) {};
    server = std::make_unique<ModelServer>(responder, o);
    server->start();
  }
  std::string url() const { return server->url() + "/v1"; }
};

// The reference device model (models/device-chain): right on some chain problems of difficulty 2-3 and wrong
// on others (greedy 0.75 / 0.41), so rewards differ within groups, GAPG's filter finds D¹ groups and the
// policy gradient is not zero.
std::string partly_right_device() {
  return std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
}

RlOptions partly_right_opts(const std::string& cloud_url) {
  RlOptions o;
  o.algo = "gapg";
  o.task = "chain";
  o.difficulties = {2, 3};
  o.prompt_pool = 16;
  o.steps = 4;
  o.prompts_per_step = 4;
  o.group = 4;
  o.max_new_tokens = 48;
  o.lr = 1e-3;
  o.checkpoint_every = 100;
  o.quiet = true;
  o.cloud_url = cloud_url;
  o.cloud_retries = 1;
  o.cloud_timeout_s = 10;
  return o;
}

RlOptions tiny_opts(const std::string& cloud_url) {
  RlOptions o;
  o.algo = "gapg";
  o.task = "chain";
  o.difficulties = {1};
  o.prompt_pool = 16;
  o.steps = 4;
  o.prompts_per_step = 4;
  o.group = 4;
  o.max_new_tokens = 24;  // room for "16+5=21 Answer: 21"
  o.lr = 1e-3;
  o.checkpoint_every = 100;
  o.quiet = true;
  o.cloud_url = cloud_url;
  o.cloud_retries = 1;
  o.cloud_timeout_s = 10;
  return o;
}

// A stand-in cloud that is correct on a known subset of the training prompts (those at even positions of the
// pool) and wrong on every other query, so that D² membership is known in advance.
class KnownSubsetResponder : public Responder {
 public:
  explicit KnownSubsetResponder(const RlOptions& o) {
    const auto task = make_task(o.task);
    const auto pool = training_pool(*task, resolve_difficulties(*task, o.difficulties), o);
    for (size_t i = 0; i < pool.size(); i += 2) answers_.emplace(pool[i].prompt, pool[i].answer);
  }
  bool correct_on(const std::string& prompt) const { return answers_.count(prompt) > 0; }
  std::vector<std::string> models() const override { return {"cloud"}; }
  GenerationResult respond(const ChatCompletionRequest& r) override {
    ++served_;
    const auto it = answers_.find(r.messages.back().content);
    Choice c;
    c.text = "Answer: " + (it == answers_.end() ? std::string("-12345") : it->second);
    c.finish_reason = "stop";
    c.completion_tokens = 3;
    GenerationResult g;
    g.choices.push_back(c);
    return g;
  }
  GenerationResult respond(const CompletionRequest&) override { throw Error("not used"); }
  std::atomic<int> served_{0};

 private:
  std::map<std::string, std::string> answers_;
};

struct StandInCloud {
  std::shared_ptr<KnownSubsetResponder> responder;
  std::unique_ptr<ModelServer> server;
  explicit StandInCloud(const RlOptions& o) : responder(std::make_shared<KnownSubsetResponder>(o)) {
    ServerOptions so;
    so.port = 0;
    so.log = [](const std::string&) {};
    server = std::make_unique<ModelServer>(responder, so);
    server->start();
  }
  std::string url() const { return server->url() + "/v1"; }
};

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

}  // namespace

TEST(RlTrainerTest, GapgStepsRunAndLogMetricsWithTheRealCloud) {
  Cloud cloud;
  const auto device = tiny_checkpoint("device", 1), out = tmp("run");
  auto r = run_rl(tiny_opts(cloud.url()), device, out, false);
  EXPECT_EQ(r.steps_done, 4);
  auto m = read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  for (const auto& line : m) {
    for (const char* key : {"reward_mean", "acc_local", "call_rate", "d1", "d2_kept", "d2_candidates",
                            "dropped", "kept_fraction", "loss", "tokens_per_s", "cloud_calls"})
      EXPECT_TRUE(line.contains(key)) << key;
    // The sampling and the update are parts of the step's time.
    const double rollout = line["rollout_seconds"].get<double>(),
                 update = line["update_seconds"].get<double>();
    EXPECT_GT(rollout, 0);
    EXPECT_GT(update, 0);
    EXPECT_LE(rollout + update, line["step_seconds"].get<double>());
    EXPECT_EQ(line["d1"].get<int>() + line["d2_candidates"].get<int>() + line["dropped"].get<int>() -
                  (line["d2_candidates"].get<int>() - line["d2_kept"].get<int>()),
              4);
  }
  // A random device never answers correctly, so every prompt is all-failed and the cloud was asked about it;
  // the cache means a prompt is asked at most once (the pool has 16 prompts).
  EXPECT_GT(m.back()["cloud_calls"].get<int64_t>(), 0);
  EXPECT_LE(m.back()["cloud_calls"].get<int64_t>(), 16);
  EXPECT_EQ(cloud.responder->served_.load(), m.back()["cloud_calls"].get<int>());
  EXPECT_TRUE(fs::exists(out + "/model/trainer_state.json"));
  EXPECT_TRUE(fs::exists(out + "/cloud_cache.jsonl"));
  // A second run sharing the cache pays no new cloud call.
  auto o = tiny_opts(cloud.url());
  o.cloud_cache = out + "/cloud_cache.jsonl";
  const int before = cloud.responder->served_.load();
  run_rl(o, device, tmp("run2"), false);
  EXPECT_EQ(cloud.responder->served_.load(), before);
  // One asking with another max_tokens does not read answers fetched under 128: the cache keys on it.
  o.cloud_max_tokens = 64;
  run_rl(o, device, tmp("run3"), false);
  EXPECT_GT(cloud.responder->served_.load(), before);
  fs::remove_all(tmp("run3"));
  fs::remove_all(out);
  fs::remove_all(tmp("run2"));
}

// Data threads (the training default): the rollout's rows are decoded on two threads, each row with its own
// seed, so the samples are those of one thread; the greedy probe splits alike; the update's micro-batches go
// to the threads and their gradients are added in order. The same run as one thread's, to the last bit.
TEST(RlTrainerTest, DataThreadsSampleTheSameRolloutsAndTrainTheSameSteps) {
  Cloud cloud;
  auto o = partly_right_opts(cloud.url());
  o.call_rate_control = "dual";
  o.dual_every = 2;
  o.dual_probe = 12;
  const auto one = tmp("dthreads1"), two = tmp("dthreads2");
  run_rl(o, partly_right_device(), one, false);
  o.data_threads = 2;
  run_rl(o, partly_right_device(), two, false);
  const auto m1 = read_metrics(one + "/metrics.jsonl"), m2 = read_metrics(two + "/metrics.jsonl");
  ASSERT_EQ(m1.size(), 4u);
  ASSERT_EQ(m2.size(), 4u);
  for (size_t i = 0; i < m1.size(); ++i)
    for (const char* key : {"reward_mean", "acc_local", "call_rate", "d1", "d2_kept", "kept_fraction"})
      EXPECT_EQ(m1[i][key], m2[i][key]) << "step " << i << " " << key;
  EXPECT_TRUE(m1.back().contains("probe_call_rate")) << m1.back().dump();
  EXPECT_EQ(m1.back()["probe_call_rate"], m2.back()["probe_call_rate"]);
  auto pa = load_checkpoint(one + "/model").model->named_parameters();
  auto pb = load_checkpoint(two + "/model").model->named_parameters();
  double worst = 0;
  for (auto& p : pa) worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  EXPECT_EQ(worst, 0.0);
  fs::remove_all(one);
  fs::remove_all(two);
}

TEST(RlTrainerTest, TheProtocolIsRecordedTheCacheKeysOnItAndTheRunCountsWhatItPaid) {
  Cloud cloud;
  const auto device = tiny_checkpoint("device_p", 1), base = tmp("proto_base"), out = tmp("proto_run");
  auto o = tiny_opts(cloud.url());
  o.steps = 2;
  run_rl(o, device, base, false);  // the default protocol
  const int before = cloud.responder->served_.load();
  ASSERT_GT(before, 0);
  // A user's own protocol file: the same cache, but the cloud is told something else — new calls.
  const std::string file = tmp("mine.json");
  Protocol mine = load_protocol("paper");
  mine.name = "mine";
  mine.device_system = "";
  mine.cloud_user = "Q {query}";
  std::ofstream(file) << mine.to_json_text();
  o.protocol = file;
  o.cloud_cache = base + "/cloud_cache.jsonl";
  o.cloud_price_in = 3.0;
  o.cloud_price_out = 15.0;
  const RlResult r = run_rl(o, device, out, false);
  EXPECT_GT(cloud.responder->served_.load(), before);
  EXPECT_EQ(r.cloud_calls, cloud.responder->served_.load() - before);
  // Recorded in the run directory and in the checkpoint (which later commands read by default).
  EXPECT_EQ(recorded_protocol(out).to_json_text(), mine.to_json_text());
  EXPECT_EQ(recorded_protocol(out + "/model").to_json_text(), mine.to_json_text());
  EXPECT_EQ(load_checkpoint(out + "/model").protocol.name, "mine");
  // Tokens billed (each reply's usage) and their price, in the metrics and the result.
  const auto m = read_metrics(out + "/metrics.jsonl");
  const auto& last = m.back();
  EXPECT_GT(last["cloud_prompt_tokens"].get<int64_t>(), 0);
  EXPECT_GT(last["cloud_completion_tokens"].get<int64_t>(), 0);
  EXPECT_EQ(last["cloud_prompt_tokens"].get<int64_t>(), r.cloud_prompt_tokens);
  EXPECT_NEAR(last["cloud_cost_usd"].get<double>(),
              (3.0 * r.cloud_prompt_tokens + 15.0 * r.cloud_completion_tokens) / 1e6, 1e-12);
  EXPECT_NEAR(r.cloud_cost_usd, last["cloud_cost_usd"].get<double>(), 1e-12);
  // The tiny random cloud writes no answer in any form: every reply it gave is counted as such.
  int64_t no_answer = 0;
  for (const auto& line : m) no_answer += line["cloud_no_answer"].get<int64_t>();
  EXPECT_GT(no_answer, 0);
  // Resuming with another protocol is refused by name; without --protocol it continues with its own.
  o.steps = 3;
  o.protocol = "handoff";
  try {
    run_rl(o, device, out, true);
    ADD_FAILURE() << "resume with another protocol was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot resume"), std::string::npos) << e.what();
  }
  o.protocol = "";
  EXPECT_EQ(run_rl(o, device, out, true).steps_done, 3);
  EXPECT_EQ(recorded_protocol(out + "/model").name, "mine");
  fs::remove_all(out);
  fs::remove_all(base);
}

TEST(RlTrainerTest, ResumeEqualsUninterruptedRun) {
  StandInCloud cloud(partly_right_opts(""));
  const auto device = partly_right_device(), a = tmp("full"), b = tmp("resumed");
  for (const std::string algo : {"gapg", "collab-grpo"}) {
    auto o = partly_right_opts(cloud.url());
    o.algo = algo;
    run_rl(o, device, a, false);
    o.stop_at_step = 2;
    EXPECT_EQ(run_rl(o, device, b, false).steps_done, 2);
    o.stop_at_step = -1;
    EXPECT_EQ(run_rl(o, device, b, true).steps_done, 4);
    auto ma = load_checkpoint(a + "/model"), mb = load_checkpoint(b + "/model");
    auto pb = mb.model->named_parameters();
    double max_diff = 0;
    for (auto& p : ma.model->named_parameters())
      max_diff = std::max(max_diff, (p.value() - pb[p.key()]).abs().max().item<double>());
    EXPECT_LT(max_diff, 1e-6) << algo;
    // And training moved the weights: the comparison above is not between two untouched copies. The device
    // is right on some prompts and the cloud on half of them, so GAPG's filter keeps groups too.
    auto m0 = load_checkpoint(device);
    auto p0 = m0.model->named_parameters();
    double moved = 0;
    for (auto& p : ma.model->named_parameters())
      moved = std::max(moved, (p.value() - p0[p.key()]).abs().max().item<double>());
    EXPECT_GT(moved, 1e-4) << algo;
    int64_t kept = 0;
    for (const auto& line : read_metrics(a + "/metrics.jsonl")) kept += line["kept_prompts"].get<int64_t>();
    EXPECT_GT(kept, 0) << algo;
    EXPECT_EQ(read_metrics(b + "/metrics.jsonl").size(), 4u);
    fs::remove_all(a);
    fs::remove_all(b);
  }
}

// kill -9 after a checkpoint but after more cloud calls (issue 16): the resumed run counts those calls from
// the cache file, so its total is the uninterrupted run's, and it pays for none of them twice.
TEST(RlTrainerTest, CloudCallsMadeAfterTheLastCheckpointCountAfterResume) {
  Cloud cloud;
  const auto device = tiny_checkpoint("device", 1), a = tmp("calls_full"), b = tmp("calls_killed");
  auto o = tiny_opts(cloud.url());
  const int64_t full_calls = run_rl(o, device, a, false).cloud_calls;
  o.stop_at_step = 2;
  run_rl(o, device, b, false);
  const int64_t calls_at_2 = read_metrics(b + "/metrics.jsonl").back()["cloud_calls"].get<int64_t>();
  ASSERT_LT(calls_at_2, full_calls)
      << "steps 3-4 must make calls of their own for this test to mean anything";
  // What a kill leaves: the step-2 checkpoint beside a cache that already holds steps 3-4's calls.
  fs::copy(b + "/model", b + "/model.step2", fs::copy_options::recursive);
  o.stop_at_step = -1;
  run_rl(o, device, b, true);
  fs::remove_all(b + "/model");
  fs::rename(b + "/model.step2", b + "/model");
  const int served = cloud.responder->served_.load();
  const RlResult r = run_rl(o, device, b, true);
  EXPECT_EQ(cloud.responder->served_.load(), served);
  EXPECT_EQ(r.cloud_calls, full_calls);
  EXPECT_EQ(read_metrics(b + "/metrics.jsonl").back()["cloud_calls"].get<int64_t>(), full_calls);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(RlTrainerTest, CloudCorrectOnAKnownSubsetGivesExactlyTheExpectedD2) {
  // A random device never answers correctly, so every drawn prompt is all-failed: the D² candidates of a step
  // are exactly its prompts on which the stand-in cloud is correct; with no D¹ the budget keeps none of them.
  auto o = tiny_opts("");
  StandInCloud cloud(o);
  o.cloud_url = cloud.url();
  o.steps = 5;
  const auto device = tiny_checkpoint("device_subset", 11), out = tmp("subset");
  run_rl(o, device, out, false);
  const auto m = read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 5u);
  const auto task = make_task(o.task);
  const auto pool = training_pool(*task, resolve_difficulties(*task, o.difficulties), o);
  int64_t candidates = 0;
  for (int64_t step = 0; step < o.steps; ++step) {
    std::mt19937_64 rng(step_seed(o.seed, step, 1));  // the rollout's prompt draw
    int expected = 0;
    for (int64_t p = 0; p < o.prompts_per_step; ++p)
      expected += cloud.responder->correct_on(pool[rng() % pool.size()].prompt);
    EXPECT_EQ(m[step]["d1"].get<int>(), 0) << step;
    EXPECT_EQ(m[step]["d2_candidates"].get<int>(), expected) << step;
    EXPECT_EQ(m[step]["d2_kept"].get<int>(), 0) << step;
    candidates += expected;
  }
  EXPECT_GT(candidates, 0);
  fs::remove_all(out);
}

TEST(RlTrainerTest, D2IsKeptWithinTheBudgetWhenTheDeviceSolvesSome) {
  auto o = partly_right_opts("");
  StandInCloud cloud(o);
  o.cloud_url = cloud.url();
  o.steps = 6;
  o.prompts_per_step = 8;
  const auto out = tmp("d2kept");
  run_rl(o, partly_right_device(), out, false);
  int64_t d1 = 0, d2 = 0;
  for (const auto& line : read_metrics(out + "/metrics.jsonl")) {
    d1 += line["d1"].get<int64_t>();
    d2 += line["d2_kept"].get<int64_t>();
    EXPECT_LE(line["d2_kept"].get<int>(), line["d2_candidates"].get<int>());
  }
  EXPECT_GT(d1, 0);
  EXPECT_GT(d2, 0);  // D² is exercised by the trainer, not only by the demo
  EXPECT_LE(static_cast<double>(d2), o.budget * d1 + 1e-9);  // the carried cap never exceeds ρ·Σ|D¹|
  fs::remove_all(out);
}

// A device that always hands off when decoding greedily (SFT on hand-off targets only): the call-rate
// controller then measures a rate far above the target and must raise the price.
std::string always_handoff_device() {
  static const std::string dir = [] {
    SftOptions o;
    o.difficulties = {2, 3};
    o.steps = 150;
    o.batch_size = 16;
    o.warmup_steps = 5;
    o.handoff_fraction = 1.0;
    o.checkpoint_every = 1000;
    o.quiet = true;
    const auto out = tmp("always_handoff");
    run_sft(handoff::testing::tiny_model_config(), o, out, false);
    return out + "/model";
  }();
  return dir;
}

TEST(RlTrainerTest, CallRateControllerRaisesThePriceAndResumesExactly) {
  auto o = partly_right_opts("");
  StandInCloud cloud(o);
  o.cloud_url = cloud.url();
  o.call_rate_control = "dual";
  o.dual_every = 2;
  o.dual_probe = 16;
  o.dual_step = 0.5;
  o.dual_kp = 1.0;
  o.lr_tail = 0.5;           // steps 3 and 4 of 4 at lr·2/2 and lr·1/2
  o.dual_select_last = 0.5;  // candidates: the weights after 2 and after 4 updates
  o.budget = budget_from_call_rate(0.3);
  const auto a = tmp("dual_full"), b = tmp("dual_resumed");
  run_rl(o, always_handoff_device(), a, false);
  const auto m = read_metrics(a + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  // The logged integral follows λ ← clamp(λ + η (ĉ − r*), 0, λ_max) from the logged greedy measurements,
  // taken at steps 0 and 2 (dual_every = 2), and the price adds K_p (ĉ − r*).
  double lambda = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    const double c = m[i]["probe_call_rate"].get<double>();
    ASSERT_GE(c, 0.0);
    ASSERT_LE(c, 1.0);
    if (i % 2 == 0) lambda = std::clamp(lambda + 0.5 * (c - 0.3), 0.0, o.dual_lambda_max);
    EXPECT_NEAR(m[i]["lambda"].get<double>(), lambda, 1e-12) << i;
    EXPECT_NEAR(m[i]["handoff_price"].get<double>(), std::clamp(lambda + 1.0 * (c - 0.3), 0.0, 2.0), 1e-12);
    EXPECT_DOUBLE_EQ(m[i]["lr"].get<double>(), i < 3 ? o.lr : o.lr / 2) << i;
  }
  EXPECT_GT(m[0]["probe_call_rate"].get<double>(), 0.9);  // the device calls: the price must rise
  EXPECT_GT(m.back()["lambda"].get<double>(), 0.3);
  // Stopped after step 3 (mid-interval) and resumed: the same weights and the same controller state.
  o.stop_at_step = 3;
  run_rl(o, always_handoff_device(), b, false);
  o.stop_at_step = -1;
  run_rl(o, always_handoff_device(), b, true);
  const auto sa = nlohmann::json::parse(read_file(a + "/model/trainer_state.json"));
  const auto sb = nlohmann::json::parse(read_file(b + "/model/trainer_state.json"));
  EXPECT_EQ(sa["dual_lambda"], sb["dual_lambda"]);
  EXPECT_EQ(sa["probe_call_rate"], sb["probe_call_rate"]);
  // The run ends on the candidate measured closer to the target (ties: the later one), saved in selected/.
  const double at2 = m[2]["probe_call_rate"].get<double>(), at4 = sa["probe_call_rate"].get<double>();
  const int64_t expect_step = std::abs(at4 - 0.3) <= std::abs(at2 - 0.3) ? 4 : 2;
  EXPECT_EQ(sa["selected_step"].get<int64_t>(), expect_step);
  EXPECT_EQ(sb["selected_step"].get<int64_t>(), expect_step);
  EXPECT_EQ(sa["selected_probe_call_rate"].get<double>(), expect_step == 4 ? at4 : at2);
  // A run that ended on a selected iterate is not extended (its weights and optimiser state would not match).
  o.steps = 6;
  try {
    run_rl(o, always_handoff_device(), a, true);
    ADD_FAILURE() << "extending a selected run must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be extended"), std::string::npos) << e.what();
  }
  o.steps = 4;
  auto sel = load_checkpoint(a + "/selected");
  auto psel = sel.model->named_parameters();
  for (auto& p : load_checkpoint(a + "/model").model->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), psel[p.key()])) << p.key();
  auto ma = load_checkpoint(a + "/model"), mb = load_checkpoint(b + "/model");
  auto pb = mb.model->named_parameters();
  for (auto& p : ma.model->named_parameters())
    EXPECT_LT((p.value() - pb[p.key()]).abs().max().item<double>(), 1e-6) << p.key();
  fs::remove_all(a);
  fs::remove_all(b);
}

// --dual-bonus-sampled: each measurement's sampled rate is the rollouts' call rate since the last one, and a
// run stopped mid-window resumes with the same window and controller state.
TEST(RlTrainerTest, BonusFollowingTheSampledRateSeesTheWindowAndResumesExactly) {
  auto o = partly_right_opts("");
  StandInCloud cloud(o);
  o.cloud_url = cloud.url();
  o.call_rate_control = "dual";
  o.dual_two_sided = true;
  o.dual_bonus_sampled = true;
  o.dual_every = 2;
  o.dual_probe = 16;
  o.budget = budget_from_call_rate(0.3);
  const auto a = tmp("bonus_full"), b = tmp("bonus_resumed");
  run_rl(o, always_handoff_device(), a, false);
  const auto m = read_metrics(a + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_DOUBLE_EQ(m[0]["dual_sampled_rate"].get<double>(), -1.0);  // step 0: no rollouts yet
  const double window = (m[0]["call_rate"].get<double>() + m[1]["call_rate"].get<double>()) / 2;
  EXPECT_NEAR(m[2]["dual_sampled_rate"].get<double>(), window, 1e-12);
  EXPECT_GT(window, 0.5);  // this device hands off in its samples
  o.stop_at_step = 3;      // mid-window: the rollouts of step 3 are in the saved window
  run_rl(o, always_handoff_device(), b, false);
  o.stop_at_step = -1;
  run_rl(o, always_handoff_device(), b, true);
  const auto sa = nlohmann::json::parse(read_file(a + "/model/trainer_state.json"));
  const auto sb = nlohmann::json::parse(read_file(b + "/model/trainer_state.json"));
  for (const char* key : {"dual_lambda", "probe_call_rate", "dual_sampled_rate", "dual_window_samples"})
    EXPECT_EQ(sa[key], sb[key]) << key;
  EXPECT_EQ(sa["dual_window_samples"].get<double>(), 2.0 * o.prompts_per_step * o.group);  // steps 3 and 4
  EXPECT_NEAR(sa["dual_window_handoffs"].get<double>(), sb["dual_window_handoffs"].get<double>(), 1e-9);
  fs::remove_all(a);
  fs::remove_all(b);
}

// --solve-first: the first steps' rollouts cannot hand off (a device that always does answers instead) and
// the controller neither measures nor moves; after them the hand-off is sampled again and the controller
// starts.
TEST(RlTrainerTest, SolveFirstBansTheHandoffThenTheControllerStarts) {
  auto o = partly_right_opts("");
  StandInCloud cloud(o);
  o.cloud_url = cloud.url();
  o.call_rate_control = "dual";
  o.dual_every = 1;
  o.dual_probe = 16;
  o.steps = 4;
  o.solve_first = 0.5;  // steps 1 and 2
  o.budget = budget_from_call_rate(0.3);
  const auto out = tmp("solve_first");
  run_rl(o, always_handoff_device(), out, false);
  const auto m = read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 4u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_DOUBLE_EQ(m[i]["call_rate"].get<double>(), 0.0) << i;
    EXPECT_DOUBLE_EQ(m[i]["lambda"].get<double>(), 0.0) << i;
    EXPECT_DOUBLE_EQ(m[i]["probe_call_rate"].get<double>(), -1.0) << i;  // not measured
  }
  EXPECT_GT(m[2]["call_rate"].get<double>(), 0.5);        // the device's own hand-offs are back
  EXPECT_GT(m[2]["probe_call_rate"].get<double>(), 0.3);  // measured, above the target:
  EXPECT_GT(m[2]["lambda"].get<double>(), 0.0);           // the price rises from there
  fs::remove_all(out);
}

TEST(RlTrainerTest, SelectionWindowMeasuresOnTheLargerProbeExtendingTheSmallerDraw) {
  auto o = tiny_opts("");
  o.steps = 10;
  o.dual_probe = 16;
  o.dual_select_last = 0.4;  // candidates: the iterates after 6 or more updates
  EXPECT_EQ(selection_start(o), 6);
  EXPECT_EQ(probe_size(o, 5), 16);
  EXPECT_EQ(probe_size(o, 6), 16);  // no --dual-select-probe: the controller's probe
  o.dual_select_probe = 48;
  EXPECT_EQ(probe_size(o, 5), 16);
  EXPECT_EQ(probe_size(o, 6), 48);
  EXPECT_EQ(probe_size(o, 10), 48);
  o.dual_select_last = 0;  // no selection: no window
  EXPECT_EQ(probe_size(o, 10), 16);
  // The larger probe starts with the smaller one's items, then draws more (train split, not the pool's).
  const auto task = make_task(o.task);
  const auto diffs = resolve_difficulties(*task, o.difficulties);
  const auto small = probe_set(*task, diffs, o, 6, 16), large = probe_set(*task, diffs, o, 6, 48);
  ASSERT_EQ(small.size(), 16u);
  ASSERT_EQ(large.size(), 48u);
  for (size_t i = 0; i < small.size(); ++i) EXPECT_EQ(small[i].prompt, large[i].prompt) << i;
  std::set<std::string> distinct;
  for (const auto& p : large) distinct.insert(p.prompt);
  EXPECT_GT(distinct.size(), 40u);
}

TEST(RlTrainerTest, BadInputIsRejectedBeforeTraining) {
  const auto device = tiny_checkpoint("device_bad", 3);
  auto expect_error = [&](RlOptions o, const std::string& fragment) {
    const auto out = tmp("bad");
    try {
      run_rl(o, device, out, false);
      ADD_FAILURE() << "expected an error containing '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(out + "/model")) << fragment;
    fs::remove_all(out);
  };
  // Nothing listens on port 9 of loopback (discard service is not running here).
  auto o = tiny_opts("http://127.0.0.1:9/v1");
  expect_error(o, "not reachable");
  o = tiny_opts("");
  expect_error(o, "needs a cloud");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.budget = 0;
  expect_error(o, "budget");
  o.budget = -0.5;
  expect_error(o, "budget");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.cloud_max_tokens = 0;
  expect_error(o, "cloud_max_tokens");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.group = 1;
  expect_error(o, "at least 2");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.weights = {0.5, 2.0, 0.2};
  expect_error(o, "alpha");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.algo = "ppo";
  expect_error(o, "unknown RL algorithm");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.call_rate_control = "dual";
  o.dual_step = 0;
  expect_error(o, "never moves");
  o.dual_step = 1;
  o.call_rate_control = "pid";
  expect_error(o, "must be none or dual");
  o = tiny_opts("http://127.0.0.1:9/v1");
  o.dual_select_last = 0.4;  // without the controller there is nothing to select from
  expect_error(o, "--dual-select-last");
  o.call_rate_control = "dual";
  o.dual_select_last = 1.5;
  expect_error(o, "dual_select_last");
  o.dual_select_last = 0;
  o.dual_select_probe = 1024;  // sizes a window that is not there
  expect_error(o, "--dual-select-probe");
  o.dual_select_last = 0.4;
  o.dual_select_probe = -1;
  expect_error(o, "dual_select_probe");
  o.dual_select_last = 0;
  o.dual_select_probe = 0;
  o.lr_tail = -0.1;
  expect_error(o, "lr_tail");
  o.lr_tail = 0;
  o.dual_bonus_sampled = true;  // one-sided: there is no bonus to shape
  expect_error(o, "--dual-bonus-sampled");
  o.dual_bonus_sampled = false;
  o.solve_first = 1.0;  // no step left to learn when to hand off
  expect_error(o, "solve_first");
  o.solve_first = -0.2;
  expect_error(o, "solve_first");
  o.solve_first = 0;
  o.handoff_credit = "prefix";
  expect_error(o, "must be all or decision");
  {
    Cloud cloud;  // reachable, so that the protocol is what is refused
    auto p = tiny_opts(cloud.url());
    p.protocol = "paper";  // hands off with a phrase: there is no decision token to credit
    p.handoff_credit = "decision";
    expect_error(p, "--handoff-credit decision");
  }
  o = tiny_opts("");
  o.algo = "task-tuning";
  o.call_rate_control = "dual";
  expect_error(o, "needs a method that can call the cloud");
}

TEST(RlTrainerTest, CloudFailingMidRunStopsCleanlyWithCheckpointIntact) {
  Cloud cloud(/*fail_after=*/5);
  const auto device = tiny_checkpoint("device_flaky", 4), out = tmp("flaky");
  auto o = tiny_opts(cloud.url());
  o.steps = 10;
  o.checkpoint_every = 1;
  try {
    run_rl(o, device, out, false);
    FAIL() << "expected the cloud failure to stop training";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("--resume"), std::string::npos) << msg;
  }
  auto st = nlohmann::json::parse(read_file(out + "/model/trainer_state.json"));
  const int64_t saved = st["step"].get<int64_t>();
  EXPECT_GE(saved, 0);
  EXPECT_LT(saved, 10);
  EXPECT_NO_THROW(load_checkpoint(out + "/model"));
  EXPECT_EQ(static_cast<int64_t>(read_metrics(out + "/metrics.jsonl").size()), saved);
  fs::remove_all(out);
}

TEST(RlTrainerTest, TaskTuningNeedsNoCloud) {
  const auto device = tiny_checkpoint("device_tt", 5), out = tmp("tt");
  auto o = tiny_opts("");
  o.algo = "task-tuning";
  o.steps = 2;
  auto r = run_rl(o, device, out, false);
  EXPECT_EQ(r.steps_done, 2);
  EXPECT_EQ(r.cloud_calls, 0);
  fs::remove_all(out);
}
