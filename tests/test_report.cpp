// The demo report on hand-made result sets (gap recovered, escaping, n/a without a gap) and routing
// accounting. Bootstrap, calibration and SVG themselves are tested in test_eval_pure.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>

#include "common/atomic_file.h"
#include "eval/methods_eval.h"
#include "eval/report_writer.h"

using namespace handoff;
namespace fs = std::filesystem;

namespace {

// Minimal XML well-formedness: balanced, properly nested tags; attributes quoted; no raw '<' or '&' in text.
bool well_formed_xml(const std::string& s, std::string* why) {
  std::vector<std::string> stack;
  size_t i = 0;
  if (s.rfind("<?xml", 0) == 0) i = s.find("?>") + 2;
  while (i < s.size()) {
    if (s[i] == '&') {
      auto semi = s.find(';', i);
      if (semi == std::string::npos || semi - i > 6) return *why = "raw & at " + std::to_string(i), false;
      i = semi + 1;
      continue;
    }
    if (s[i] != '<') {
      ++i;
      continue;
    }
    auto end = s.find('>', i);
    if (end == std::string::npos) return *why = "unclosed tag", false;
    std::string tag = s.substr(i + 1, end - i - 1);
    if (tag.find('<') != std::string::npos) return *why = "'<' inside a tag", false;
    size_t quotes = std::count(tag.begin(), tag.end(), '"');
    if (quotes % 2) return *why = "unbalanced quotes in <" + tag + ">", false;
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1))
        return *why = "mismatched </" + tag.substr(1) + ">", false;
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
    i = end + 1;
  }
  if (!stack.empty()) return *why = "unclosed <" + stack.back() + ">", false;
  return true;
}

MethodRow row(const std::string& name, int n, int correct, int called) {
  MethodRow r;
  r.method = name;
  for (int i = 0; i < n; ++i) {
    r.correct.push_back(i < correct);
    r.called.push_back(i < called);
    r.difficulty.push_back(1 + i % 2);
  }
  return r;
}

}  // namespace

TEST(ReportTest, GapRecoveredAndTableFromHandMadeRows) {
  const auto dir = (fs::temp_directory_path() / "handoff_report_test").string();
  fs::remove_all(dir);
  make_dirs(dir);
  ReportInputs in;
  in.rows = {row("device-only (task-tuned)", 100, 40, 0), row("cloud-only", 100, 90, 100),
             row("GAPG (ours)", 100, 65, 30), row("weird <&> method", 100, 30, 10), row("a|b", 100, 50, 0)};
  in.times = {{"rl", 12.5}};
  write_report(in, dir);
  auto res = nlohmann::json::parse(read_file(dir + "/results.json"));
  ASSERT_EQ(res["methods"].size(), 5u);
  EXPECT_NEAR(res["methods"][2]["gap_recovered"].get<double>(), 0.5, 1e-9);  // (0.65 − 0.40) / (0.90 − 0.40)
  EXPECT_NEAR(res["methods"][3]["gap_recovered"].get<double>(), -0.2, 1e-9);
  EXPECT_NEAR(res["methods"][2]["call_rate"].get<double>(), 0.3, 1e-9);
  const std::string md = read_file(dir + "/report.md");
  // The main table is eval/pure/report.h's: percent with one decimal, interval in brackets.
  EXPECT_NE(md.find("| GAPG (ours) | 65.0 ["), std::string::npos) << md;
  EXPECT_NE(md.find("] | 30.0 | 50.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| weird <&> method | 30.0 ["), std::string::npos) << md;
  std::string why;
  const std::string svg = read_file(dir + "/accuracy_vs_call_rate.svg");
  EXPECT_TRUE(well_formed_xml(svg, &why)) << why;
  // '|' in a method name is escaped in every table (main and by difficulty), so rows keep their columns.
  EXPECT_EQ(md.find("| a|b |"), std::string::npos) << md;
  EXPECT_NE(md.find("| a\\|b | 50.0 ["), std::string::npos) << md;
  EXPECT_NE(md.find("| a\\|b | 0.00 | 0.00 |"), std::string::npos) << md;
  EXPECT_NE(svg.find("weird &lt;&amp;&gt; method"), std::string::npos);
  // No gap (cloud no better than device): gap recovered is reported as n/a, not a division by zero.
  in.rows[1] = row("cloud-only", 100, 40, 100);
  write_report(in, dir);
  res = nlohmann::json::parse(read_file(dir + "/results.json"));
  EXPECT_TRUE(res["methods"][2]["gap_recovered"].is_null());
  fs::remove_all(dir);
}

// With several RL seeds: mean ± sample sd per method, the gap recovered per seed against that seed's own
// anchors and averaged (three decimals, sign kept: "-0.200", not the old to_string(x).substr(0, 5) "-0.20"),
// '|' escaped; results.json carries the per-seed numbers.
TEST(ReportTest, SeedSpreadTableAndJson) {
  const auto dir = (fs::temp_directory_path() / "handoff_report_seeds").string();
  fs::remove_all(dir);
  make_dirs(dir);
  ReportInputs in;
  in.rows = {row("device-only (task-tuned)", 10, 4, 0), row("cloud-only", 10, 9, 10),
             row("GAPG (ours)", 10, 5, 3)};
  in.seed_spread = {{"device-only (task-tuned)", {1, 2}, {0.4, 0.4}, {0, 0}},
                    {"cloud-only", {1, 2}, {0.9, 0.9}, {1, 1}},
                    {"GAPG (ours)", {1, 2}, {0.5, 0.7}, {0.3, 0.3}},
                    {"worse|than device", {1, 2}, {0.3, 0.3}, {0.1, 0.2}}};
  write_report(in, dir);
  const std::string md = read_file(dir + "/report.md");
  EXPECT_NE(md.find("## Across RL seeds (1, 2)"), std::string::npos) << md;
  EXPECT_NE(md.find("| GAPG (ours) | 0.600 ± 0.141 | 0.300 ± 0.000 | 0.400 | 0.500 @ 0.30, 0.700 @ 0.30 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| worse\\|than device | 0.300 ± 0.000 | 0.150 ± 0.071 | -0.200 |"), std::string::npos)
      << md;
  const auto res = nlohmann::json::parse(read_file(dir + "/results.json"));
  ASSERT_EQ(res["seeds"].size(), 4u);
  EXPECT_EQ(res["seeds"][2]["seeds"], (std::vector<int>{1, 2}));
  EXPECT_NEAR(res["seeds"][2]["accuracy_mean"].get<double>(), 0.6, 1e-12);
  EXPECT_NEAR(res["seeds"][2]["accuracy_sd"].get<double>(), 0.2 / std::sqrt(2.0), 1e-12);
  fs::remove_all(dir);
}

TEST(MethodsEvalTest, RoutingCombinesDeviceAndCloudVerdicts) {
  std::vector<Problem> items(4);
  for (int i = 0; i < 4; ++i) items[i].difficulty = i + 1;
  DeviceVerdicts d;
  d.local_correct = {1, 0, 1, 0};
  d.handoff = {0, 0, 0, 1};
  d.tokens = {10, 10, 10, 4};
  CloudVerdicts c;
  c.correct = {1, 1, 0, 1};
  c.tokens = {20, 20, 20, 20};
  auto self = self_routed("self", d, c, items);
  EXPECT_EQ(self.correct, (std::vector<uint8_t>{1, 0, 1, 1}));
  EXPECT_DOUBLE_EQ(self.call_rate(), 0.25);
  EXPECT_DOUBLE_EQ(self.cloud_tokens, 5.0);
  auto r = routed("router", d, c, items, {0, 1, 1, 0});
  EXPECT_EQ(r.correct,
            (std::vector<uint8_t>{1, 1, 0, 1}));  // the device's own hand-off still goes to the cloud
  EXPECT_DOUBLE_EQ(r.call_rate(), 0.75);
}
