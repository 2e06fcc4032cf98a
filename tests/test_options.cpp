// Options from one table: RlOptions and SftOptions round-trip through JSON, reject unknown keys and wrong
// types with the source's name, take CLI flags only where given, and are validated in one place.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/option_table.h"
#include "rl/rl_options.h"
#include "rl/sft_options.h"

using namespace handoff;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// Parses `args` (without the program name) on a command with the table's flags; applies them to `o`.
template <class T>
T with_flags(const OptionTable<T>& table, T o, std::vector<std::string> args) {
  CLI::App app("test");
  auto apply = table.bind_cli(app);
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  app.parse(args);
  apply(o);
  return o;
}

}  // namespace

TEST(OptionsTest, RlOptionsRoundTripThroughJson) {
  RlOptions o;
  o.algo = "collab-grpo";
  o.difficulties = {1, 3};
  o.steps = 7;
  o.budget = 0.25;
  o.carry_remainder = false;
  o.weights.alpha_c = 0.7;
  o.seed = 42;
  o.cloud_url = "http://x/v1";  // where the run talks to: never recorded
  const nlohmann::json j = o.to_json();
  EXPECT_FALSE(j.contains("cloud_url"));
  EXPECT_EQ(j.at("alpha_c").get<double>(), 0.7);
  const RlOptions back = RlOptions::from_json(j, "test");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.difficulties, (std::vector<int>{1, 3}));
  EXPECT_FALSE(back.carry_remainder);
  EXPECT_EQ(back.cloud_url, "");
  // Keys left out keep their defaults.
  EXPECT_EQ(RlOptions::from_json({{"steps", 3}}, "test").group, RlOptions{}.group);
}

TEST(OptionsTest, UnknownKeysAndWrongTypesNameTheSource) {
  EXPECT_NE(error_of([] {
              RlOptions::from_json({{"stepz", 3}}, "presets/x.json/rl");
            }).find("presets/x.json/rl: unknown RL option 'stepz'"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              RlOptions::from_json({{"steps", "many"}}, "f.json");
            }).find("f.json: RL option 'steps' has the wrong type"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              SftOptions::from_json({{"lrr", 1}}, "p/sft");
            }).find("unknown SFT option 'lrr'"),
            std::string::npos);
  // A preset's compute device is read, but never written into a run's recorded options.
  const SftOptions s = SftOptions::from_json({{"device", "cuda"}, {"steps", 5}}, "p/sft");
  EXPECT_EQ(s.device, "cuda");
  EXPECT_FALSE(s.to_json().contains("device"));
  EXPECT_EQ(s.to_json().at("steps").get<int64_t>(), 5);
}

TEST(OptionsTest, CliFlagsOverrideOnlyWhatIsGiven) {
  RlOptions preset;
  preset.steps = 300;
  preset.lr = 1e-4;
  preset.weights.alpha_c = 0.7;
  const RlOptions o = with_flags(rl_option_table(), preset,
                                 {"--steps", "5", "--alpha-c", "0.6", "--difficulties", "1,2,4",
                                  "--allow-any-order", "--cloud", "http://127.0.0.1:1/v1"});
  EXPECT_EQ(o.steps, 5);
  EXPECT_DOUBLE_EQ(o.weights.alpha_c, 0.6);
  EXPECT_DOUBLE_EQ(o.lr, 1e-4);  // not given: the preset's
  EXPECT_EQ(o.difficulties, (std::vector<int>{1, 2, 4}));
  EXPECT_TRUE(o.allow_any_order);
  EXPECT_EQ(o.cloud_url, "http://127.0.0.1:1/v1");
  SftOptions s;
  s.steps = 900;
  s = with_flags(sft_option_table(), s, {"--lr", "0.01"});
  EXPECT_EQ(s.steps, 900);
  EXPECT_DOUBLE_EQ(s.lr, 0.01);
  EXPECT_THROW(with_flags(rl_option_table(), RlOptions{}, {"--steps", "many"}), CLI::ParseError);
}

TEST(OptionsTest, ValidationNamesTheField) {
  auto invalid = [](const std::function<void(RlOptions&)>& edit) {
    RlOptions o;
    edit(o);
    return error_of([&] { o.validate(); });
  };
  EXPECT_EQ(invalid([](RlOptions&) {}), "");
  EXPECT_NE(invalid([](RlOptions& o) { o.budget = 0; }).find("budget ρ must be positive"), std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.budget = std::nan(""); }).find("budget"), std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.group = 1; }).find("at least 2"), std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.steps = 0; }).find("steps: must be positive"), std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.temperature = 3; }).find("temperature: must be in (0, 2]"),
            std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.algo = "ppo"; }).find("unknown RL algorithm 'ppo'"),
            std::string::npos);
  EXPECT_NE(invalid([](RlOptions& o) { o.weights = {0.5, 2.0, 0.2}; }).find("alpha"), std::string::npos);
  EXPECT_EQ(invalid([](RlOptions& o) {
              o.weights = {0.5, 2.0, 0.2};
              o.allow_any_order = true;
            }),
            "");
  SftOptions s;
  s.handoff_fraction = 1.5;
  EXPECT_NE(error_of([&] { s.validate(); }).find("handoff_fraction: must be in [0, 1]"), std::string::npos);
}
