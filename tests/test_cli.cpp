// The CLI: bad input gives a clear message and a non-zero exit; a tiny sft → eval round trip works.
#include <gtest/gtest.h>

#include <filesystem>

#include "cli_runner.h"
#include "common/atomic_file.h"

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
  fs::remove_all(tmp("x"));
  fs::remove(bad_preset);
}

TEST(CliTest, InfoReportsBlasAndGemm) {
  auto r = run_cli("info --gemm-size 256");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "BLAS:")) << r.output;
  EXPECT_TRUE(contains(r.output, "GFLOP/s")) << r.output;
}
