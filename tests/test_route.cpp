// The routers of route/ on hand-made verdicts (no model): the random router's stream, the oracle and the
// confidence scores, calibration to a rate; the probe's saved state and the router file, including the ways
// a file can be broken. The probes on a real model run in test_cli (route fit|eval) and the demo.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "route/confidence_router.h"
#include "route/linear_probe.h"
#include "route/oracle_router.h"
#include "route/pure/auc.h"
#include "route/random_router.h"
#include "route/router.h"
#include "route/router_file.h"

using namespace handoff;
using namespace handoff::route;
namespace fs = std::filesystem;

namespace {

struct Items {
  std::vector<Problem> items;
  DeviceVerdicts device;
  RouterSplit view() const { return {items, device}; }
};

Items items_of(const std::vector<uint8_t>& correct, const std::vector<float>& mean_logprob) {
  Items s;
  s.items.resize(correct.size());
  s.device.local_correct = correct;
  s.device.handoff.assign(correct.size(), 0);
  s.device.mean_logprob = mean_logprob;
  return s;
}

}  // namespace

TEST(RouterTest, RandomRouterContinuesOneSeededStream) {
  const Items val = items_of(std::vector<uint8_t>(3, 1), {}), test = items_of(std::vector<uint8_t>(5, 1), {});
  RandomRouter a(5);
  const auto v = a.score(val.view()), t = a.score(test.view());
  // The same draws as the recorded demo: uniform [0, 1) from mt19937_64(seed), validation first.
  std::mt19937_64 rng(5);
  for (size_t i = 0; i < 8; ++i) {
    const double x = std::uniform_real_distribution<double>(0, 1)(rng);
    EXPECT_EQ(i < 3 ? v[i] : t[i - 3], x) << i;
  }
  // Saved after validation, a loaded router goes on with the test draws.
  RandomRouter b(99);
  b.load_state({{"seed", 5}, {"draws", 3}});
  EXPECT_EQ(b.score(test.view()), t);
  EXPECT_EQ(a.state(), (nlohmann::json{{"seed", 5}, {"draws", 8}}));
  EXPECT_THROW(b.load_state({{"seed", -1}}), Error);
}

TEST(RouterTest, OracleHandsOffExactlyTheErrorsAndConfidenceTheLeastSure) {
  const Items s = items_of({1, 0, 1, 0, 0}, {-0.1f, -2.0f, -0.5f, -1.0f, -3.0f});
  OracleRouter oracle;
  const auto o = oracle.score(s.view());
  for (double rate : {0.0, 0.3, 1.0})
    EXPECT_EQ(oracle.decide(o, oracle.calibrate(o, rate)), (std::vector<uint8_t>{0, 1, 0, 1, 1}));
  ConfidenceRouter conf;
  const auto c = conf.score(s.view());
  EXPECT_DOUBLE_EQ(c[4], 3.0);
  // Calibrated to 0.4 on 5 items: the two least confident items (scores 3 and 2) lie above the threshold.
  EXPECT_EQ(conf.decide(c, conf.calibrate(c, 0.4)), (std::vector<uint8_t>{0, 1, 0, 0, 1}));
  EXPECT_THROW(make_router("wizard", {}), Error);
  EXPECT_THROW(make_router("prompt-router", {}), Error);  // a probe needs the device model
  for (const auto& key : router_keys())
    if (key.find("router") == std::string::npos) {
      EXPECT_EQ(make_router(key, {})->key(), key);
    }
}

TEST(RouterTest, LinearProbeStateRoundTripsAndRejectsBrokenState) {
  const at::Tensor x = torch::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f}).reshape({3, 2});
  LinearProbe p;
  p.fit(x, torch::tensor({0.f, 1.f, 1.f}), 50);
  const nlohmann::json j = p.to_json();
  const LinearProbe q = LinearProbe::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_TRUE(at::equal(p.predict(x), q.predict(x)));  // floats survive JSON exactly
  nlohmann::json bad = j;
  bad["weight"].push_back(1.0);
  EXPECT_THROW(LinearProbe::from_json(bad), Error);  // mean and std no longer match
  bad = j;
  bad["std"][0] = 0.0;
  EXPECT_THROW(LinearProbe::from_json(bad), Error);
  bad = j;
  bad.erase("bias");
  EXPECT_THROW(LinearProbe::from_json(bad), Error);
  EXPECT_THROW(LinearProbe::from_json(nlohmann::json::array()), Error);
}

TEST(RouterTest, RouterFileRoundTripsAndNamesWhatIsBroken) {
  const std::string path = (fs::temp_directory_path() / "handoff_route_file.json").string();
  RouterFile f{"confidence", "/models/d", "chain", 0.3, 1.25, 64, nlohmann::json::object()};
  save_router_file(path, f);
  const RouterFile g = load_router_file(path);
  EXPECT_EQ(g.router, "confidence");
  EXPECT_EQ(g.threshold, 1.25);
  EXPECT_EQ(g.max_new_tokens, 64);
  auto expect_error = [&](const std::string& text, const std::string& what) {
    write_file_atomic(path, text);
    try {
      load_router_file(path);
      ADD_FAILURE() << "no error for " << text;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error("{\"format\": \"handoff-rou", "not valid JSON");
  expect_error("{\"format\": \"other\", \"version\": 1}", "not a handoff router file");
  nlohmann::json j = {{"format", "handoff-router"}, {"version", 1}, {"router", "oracle"}};
  expect_error(j.dump(), "router file " + path);
  j.update({{"device", "d"},
            {"task", "chain"},
            {"call_rate_target", 2.0},
            {"threshold", 0.5},
            {"max_new_tokens", 64},
            {"state", nlohmann::json::object()}});
  expect_error(j.dump(), "out of range");
  fs::remove(path);
  EXPECT_THROW(load_router_file(path), Error);
}

TEST(RocAuc, RanksTiesAndBadInput) {
  // Perfect ranking, reversed ranking, and every score tied.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5}, {1, 0, 0}), 0.5);
  // Pairs (positive, negative): (0.4 > 0.3) 1, (0.4 < 0.6) 0, (0.6 = 0.6) ½, (0.6 > 0.3) 1 → 2.5 / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.3, 0.4, 0.6, 0.6}, {0, 1, 1, 0}), 0.625);
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));  // no negatives: undefined
  EXPECT_THROW(roc_auc({0.1}, {1, 0}), Error);
  EXPECT_THROW(roc_auc({}, {}), Error);
  EXPECT_THROW(roc_auc({std::nan(""), 0.2}, {1, 0}), Error);
}
