// Real math data: MATH-style JSONL (\boxed{} answers), the answer normalisation shared with GSM8K, and the
// dataset task that puts both behind the Task interface.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/error.h"
#include "tasks/dataset_task.h"
#include "tasks/jsonl_dataset.h"
#include "tasks/math_answer.h"
#include "tasks/task.h"
#include "test_support.h"

using namespace handoff;
using handoff::testing::error_of;
namespace fs = std::filesystem;

namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("handoff_" + name);
  std::ofstream(p) << text;
  return p.string();
}

}  // namespace

TEST(MathAnswerTest, LastBoxedBalancesBraces) {
  EXPECT_EQ(last_boxed("so $\\boxed{42}$."), "42");
  EXPECT_EQ(last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}"), "\\frac{1}{2}");
  EXPECT_EQ(last_boxed("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}"),
            "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(last_boxed("$\\boxed 5$"), "5");
  EXPECT_EQ(last_boxed("\\fbox{7}"), "7");
  EXPECT_EQ(last_boxed("no box"), std::nullopt);
  EXPECT_EQ(last_boxed("\\boxed{\\frac{1}{2}"), std::nullopt);  // never closes
}

TEST(MathAnswerTest, EquivalentFormsAgree) {
  // Decorations.
  EXPECT_TRUE(math_answers_equal("$42$", "42"));
  EXPECT_TRUE(math_answers_equal("\\$1,234.00", "1234"));
  EXPECT_TRUE(math_answers_equal("1,234,567", "1234567"));
  EXPECT_TRUE(math_answers_equal("6.0", "6"));
  EXPECT_TRUE(math_answers_equal("42.", "42"));
  EXPECT_TRUE(math_answers_equal("\\boxed{42}", "42"));
  EXPECT_TRUE(math_answers_equal("90^\\circ", "90"));
  EXPECT_TRUE(math_answers_equal("90^{\\circ}", "90"));
  EXPECT_TRUE(math_answers_equal("50\\%", "50"));
  EXPECT_TRUE(math_answers_equal("10\\!000", "10000"));
  EXPECT_TRUE(math_answers_equal("x = 5", "5"));
  // Fractions as exact rationals.
  EXPECT_TRUE(math_answers_equal("\\frac{1}{2}", "0.5"));
  EXPECT_TRUE(math_answers_equal("\\dfrac{3}{4}", "3/4"));
  EXPECT_TRUE(math_answers_equal("\\tfrac34", "0.75"));
  EXPECT_TRUE(math_answers_equal("-\\frac{6}{4}", "-1.5"));
  EXPECT_TRUE(math_answers_equal("\\frac{-3}{2}", "-3/2"));
  EXPECT_TRUE(math_answers_equal("4/2", "2"));
  EXPECT_TRUE(math_answers_equal(".5", "1/2"));
  EXPECT_FALSE(math_answers_equal("0.1", "0.10000001"));
  EXPECT_FALSE(math_answers_equal("\\frac{1}{3}", "0.333"));
  // Text, \left/\right, units.
  EXPECT_TRUE(math_answers_equal("\\text{(B)}", "(B)"));
  EXPECT_TRUE(math_answers_equal("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"));
  EXPECT_TRUE(math_answers_equal("\\left[1,2\\right)", "[1, 2)"));
  EXPECT_TRUE(math_answers_equal("12 \\text{ cm}^2", "12"));
  EXPECT_TRUE(math_answers_equal("12\\mbox{ inches}", "12"));
  EXPECT_TRUE(math_answers_equal("18 dollars", "18"));
  EXPECT_TRUE(math_answers_equal("\\frac{1}{2} cup", "0.5"));
  EXPECT_FALSE(math_answers_equal("5 x", "5"));   // a variable is not a unit
  EXPECT_FALSE(math_answers_equal("3 pi", "3"));  // nor is pi
  // Symbolic answers compared as normalised text.
  EXPECT_TRUE(math_answers_equal("\\dfrac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}"));
  EXPECT_TRUE(math_answers_equal("2 \\sqrt{2}", "2\\sqrt{2}"));
  EXPECT_FALSE(math_answers_equal("2\\sqrt{2}", "2\\sqrt{3}"));
  EXPECT_FALSE(math_answers_equal("(1,234)", "(1234)"));  // a pair, not a thousands comma
  // Nothing matches nothing; garbage never throws.
  EXPECT_FALSE(math_answers_equal("", ""));
  EXPECT_FALSE(math_answers_equal("$$", "$"));
  EXPECT_FALSE(math_answer_value("\\frac{1}{0}"));  // no value: compared as text
  for (const char* junk :
       {"\\frac{", "\\boxed{", "}}}{{{", "\\frac{1}{2", "\\sqrt", "\\text{", "=", "1,", "-"})
    EXPECT_NO_THROW(normalize_math_answer(junk)) << junk;
  EXPECT_EQ(normalize_math_answer("\\dfrac{2}{4}"), "1/2");
  EXPECT_EQ(math_answer_value("-1,000.50")->to_string(), "-2001/2");
}

TEST(MathDataTest, LoadsMathJsonlWithBoxedAnswersAndLevels) {
  const std::string path = write_temp(
      "math_ok.jsonl",
      R"({"problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.", "solution": "We get $\\boxed{1}$ wrong first; really $\\frac{1}{2}+\\frac{1}{4} = \\boxed{\\frac{3}{4}}$.", "level": "Level 2", "type": "Algebra"})"
      "\n\n"
      R"({"problem": "Find the point.", "solution": "It is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.", "level": "Level 5"})"
      "\n"
      R"({"problem": "What is 6*7?", "solution": "6*7=42.", "answer": "42"})"
      "\n");
  auto problems = load_math_jsonl(path);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_EQ(problems[0].task, "math");
  EXPECT_EQ(problems[0].prompt, "Compute $\\frac{1}{2}+\\frac{1}{4}$.");
  EXPECT_EQ(problems[0].answer, "\\frac{3}{4}");  // the LAST box
  EXPECT_EQ(problems[0].difficulty, 2);
  EXPECT_EQ(problems[1].answer, "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(problems[1].difficulty, 5);
  EXPECT_EQ(problems[2].answer, "42");  // an explicit "answer" field wins
  EXPECT_EQ(problems[2].difficulty, 0);

  DatasetTask task("math", problems);
  EXPECT_EQ(task.min_difficulty(), 0);
  EXPECT_EQ(task.max_difficulty(), 5);
  EXPECT_TRUE(task.verify(problems[0], "0.75"));
  EXPECT_TRUE(task.verify(problems[0], "$\\dfrac{3}{4}$"));
  EXPECT_FALSE(task.verify(problems[0], "1"));
  EXPECT_TRUE(task.verify(problems[1], "(3, \\frac{\\pi}{2})"));
  EXPECT_EQ(task.solution(problems[2]), "Answer: 42");
  fs::remove(path);
}

TEST(MathDataTest, MalformedLinesAreErrorsWithTheLineNumber) {
  const std::string ok = R"({"problem": "p", "solution": "\\boxed{1}"})";
  auto path = write_temp("math_bad.jsonl", ok + "\n" + ok + "\n{\"problem\": \"p\", \"solution\": \n");
  auto msg = error_of([&] { load_math_jsonl(path); });
  EXPECT_NE(msg.find(path + ":3: malformed JSON"), std::string::npos) << msg;
  path = write_temp("math_bad.jsonl", ok + "\n{\"problem\": \"p\", \"solution\": \"no box here\"}\n");
  msg = error_of([&] { load_math_jsonl(path); });
  EXPECT_NE(msg.find(":2: solution has no \\boxed"), std::string::npos) << msg;
  path = write_temp("math_bad.jsonl", "{\"problem\": \"p\", \"solution\": \"\\\\boxed{3\"}\n");
  msg = error_of([&] { load_math_jsonl(path); });
  EXPECT_NE(msg.find(":1: solution has no \\boxed"), std::string::npos) << msg;
  path = write_temp("math_bad.jsonl", "{\"question\": \"p\", \"solution\": \"\\\\boxed{3}\"}\n");
  msg = error_of([&] { load_math_jsonl(path); });
  EXPECT_NE(msg.find(":1: missing or non-string field \"problem\""), std::string::npos) << msg;
  path = write_temp("math_bad.jsonl", "{\"problem\": \"p\", \"solution\": \"\\\\boxed{ }\"}\n");
  EXPECT_NE(error_of([&] { load_math_jsonl(path); }).find(":1: the \\boxed{} answer is empty"),
            std::string::npos);
  path = write_temp("math_bad.jsonl", "[1, 2]\n");
  EXPECT_NE(error_of([&] { load_math_jsonl(path); }).find(":1: line is not a JSON object"),
            std::string::npos);
  path = write_temp("math_bad.jsonl", "\n\n");
  EXPECT_NE(error_of([&] { load_math_jsonl(path); }).find("has no problems"), std::string::npos);
  fs::remove(path);
  EXPECT_NE(error_of([&] { load_math_jsonl(path); }).find("cannot open dataset"), std::string::npos);
}

TEST(MathDataTest, DatasetTaskSamplesBySplitAndDifficulty) {
  std::vector<Problem> problems;
  for (int i = 0; i < 200; ++i)
    problems.push_back(Problem{"gsm8k", "question " + std::to_string(i), std::to_string(i), 1 + i % 3});
  DatasetTask task("gsm8k", problems);
  EXPECT_EQ(task.min_difficulty(), 1);
  EXPECT_EQ(task.max_difficulty(), 3);
  std::mt19937_64 rng(5);
  int test_draws = 0;
  for (int k = 0; k < 100; ++k) {
    const Split split = k % 2 ? Split::kTest : Split::kTrain;
    const int difficulty = 1 + k % 3;
    Problem p = task.sample(rng, difficulty, split);
    EXPECT_EQ(split_of(p.prompt), split);
    EXPECT_EQ(p.difficulty, difficulty);
    EXPECT_TRUE(task.verify(p, p.answer + ".00"));
    test_draws += split == Split::kTest;
  }
  EXPECT_GT(test_draws, 0);
  std::mt19937_64 a(9), b(9);
  EXPECT_EQ(task.sample(a, 2, Split::kTrain).prompt, task.sample(b, 2, Split::kTrain).prompt);
  EXPECT_NE(error_of([&] { task.sample(rng, 4, Split::kTrain); }).find("gsm8k"), std::string::npos);
  EXPECT_THROW(DatasetTask("empty", {}), Error);
}

TEST(MathDataTest, MakeTaskOpensRealDataFiles) {
  // The shared GSM8K test split as `--task gsm8k:FILE`: every problem verifies its own reference answer.
  const std::string gsm = std::string(HANDOFF_SOURCE_DIR) + "/../shared/data/gsm8k/test.jsonl";
  if (std::filesystem::exists(gsm)) {
    auto task = make_task("gsm8k:" + gsm);
    EXPECT_EQ(task->name(), "gsm8k");
    std::mt19937_64 rng(1);
    for (int k = 0; k < 20; ++k) {
      Problem p = task->sample(rng, task->min_difficulty(), k % 2 ? Split::kTest : Split::kTrain);
      EXPECT_TRUE(task->verify(p, p.answer)) << p.prompt;
      EXPECT_FALSE(task->verify(p, p.answer + "1")) << p.prompt;
    }
  }
  const std::string math = write_temp(
      "math_small.jsonl",
      R"({"problem": "Half of 3?", "solution": "It is $\\boxed{\\frac{3}{2}}$.", "level": "Level 2"})"
      "\n");
  auto m = make_task("math:" + math);
  EXPECT_EQ(m->min_difficulty(), 2);
  EXPECT_EQ(m->max_difficulty(), 2);
  auto msg = error_of([] { make_task("gsm8k:/nonexistent/x.jsonl"); });
  EXPECT_NE(msg.find("/nonexistent/x.jsonl"), std::string::npos) << msg;
  msg = error_of([] { make_task("math:"); });
  EXPECT_NE(msg.find("names no file"), std::string::npos) << msg;
  msg = error_of([] { make_task("gsm9k"); });
  EXPECT_NE(msg.find("gsm8k:FILE.jsonl"), std::string::npos) << msg;
}

TEST(MathDataTest, GsmAnswersUseTheSameNormalisation) {
  const std::string path =
      write_temp("gsm_small.jsonl",
                 R"({"question": "How much?", "answer": "She makes 9 * 2 = $<<9*2=18>>18.\n#### 1,018"})"
                 "\n");
  auto problems = load_jsonl_dataset(path);
  DatasetTask task("gsm8k", problems);
  EXPECT_TRUE(task.verify(problems[0], "$1,018.00"));
  EXPECT_TRUE(task.verify(problems[0], "1018 dollars"));
  EXPECT_TRUE(task.verify(problems[0], "\\boxed{1018}"));
  EXPECT_FALSE(task.verify(problems[0], "18"));
  fs::remove(path);
}

// The real GSM8K test set (../shared/data): every final answer is a number to the normaliser.
TEST(MathDataTest, EveryRealGsm8kTestAnswerIsANumber) {
  const std::string path = std::string(HANDOFF_SOURCE_DIR) + "/../shared/data/gsm8k/test.jsonl";
  ASSERT_TRUE(fs::exists(path))
      << "GSM8K not present at " << path
      << " (../shared must sit beside the checkout, as for JsonlDataset.LoadsGsm8kTrain)";
  auto problems = load_jsonl_dataset(path);
  EXPECT_EQ(problems.size(), 1319u);
  DatasetTask task("gsm8k", problems);
  for (const auto& p : problems) {
    EXPECT_TRUE(math_answer_value(p.answer).has_value()) << p.answer;
    EXPECT_TRUE(task.verify(p, p.answer));
  }
}
