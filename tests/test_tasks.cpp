// Tasks: generators, exact verifiers, worked solutions, the train/test split, answer extraction and the
// GSM8K JSONL loader. Behaviour, not "it ran": every sampled problem's own solution must verify, perturbed
// answers must not, splits must be disjoint, and hostile answers must be rejected without a crash.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/carry_task.h"
#include "tasks/countdown_task.h"
#include "tasks/expression.h"
#include "tasks/jsonl_dataset.h"
#include "tasks/task.h"

using namespace handoff;

namespace {

int count_char(const std::string& s, char c) {
  return static_cast<int>(std::count(s.begin(), s.end(), c));
}

// Printable ASCII only: the char tokenizer of the embedded default encodes nothing else.
bool printable_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c < 32 || c > 126) return false;
  return true;
}

// A wrong answer of the right shape: the value plus one (an expression for countdown).
std::string off_by_one(const Problem& p) {
  if (p.task == "countdown") return "(" + p.answer + ")+1";
  return std::to_string(std::stoll(p.answer) + 1);
}

// Equations a worked solution is expected to contain at a given difficulty.
int expected_equations(const std::string& task, int difficulty) {
  if (task == "carry") return CarryTask::kSteps;  // the difficulty is hidden: always four steps
  return task == "countdown" ? difficulty - 1 : difficulty;
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto dir = std::filesystem::temp_directory_path() / ("handoff_test_tasks_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / name).string();
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// Runs fn, expects an Error whose message contains every one of `parts`.
template <class Fn>
void expect_error_mentions(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

// ---------------------------------------------------------------- registry and split

TEST(TaskRegistry, MakesEveryNamedTaskAndRejectsUnknownNames) {
  EXPECT_EQ(task_names(), (std::vector<std::string>{"chain", "countdown", "wordmath", "carry", "hops"}));
  for (const auto& n : task_names()) EXPECT_EQ(make_task(n)->name(), n);
  expect_error_mentions([] { make_task("gsm9k"); },
                        {"gsm9k", "chain", "countdown", "wordmath", "carry", "hops"});
}

TEST(TaskSplit, StableFnv1aHashOneInEight) {
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (% 8 == 4), of "e" ends in ...0 mod 8: fixed across machines.
  EXPECT_EQ(split_of("a"), Split::kTrain);
  EXPECT_EQ(split_of("e"), Split::kTest);
  EXPECT_EQ(split_of("Q:5 +1?"), Split::kTest);
  EXPECT_EQ(split_of("Q:4 +1?"), Split::kTrain);
  int test = 0;
  for (int i = 0; i < 8000; ++i) test += split_of("prompt " + std::to_string(i)) == Split::kTest;
  EXPECT_NEAR(test / 8000.0, 0.125, 0.015);
}

TEST(TaskDifficulty, OutsideRangeIsAnError) {
  std::mt19937_64 rng(1);
  for (const auto& n : task_names()) {
    auto t = make_task(n);
    EXPECT_THROW(t->sample(rng, t->min_difficulty() - 1, Split::kTrain), Error) << n;
    EXPECT_THROW(t->sample(rng, t->max_difficulty() + 1, Split::kTrain), Error) << n;
    expect_error_mentions(
        [&] { t->sample(rng, 99, Split::kTrain); },
        {n, "99", std::to_string(t->min_difficulty()), std::to_string(t->max_difficulty())});
  }
  EXPECT_EQ(make_task("chain")->min_difficulty(), 1);
  EXPECT_EQ(make_task("chain")->max_difficulty(), 8);
  EXPECT_EQ(make_task("countdown")->min_difficulty(), 2);
  EXPECT_EQ(make_task("countdown")->max_difficulty(), 5);
  EXPECT_EQ(make_task("wordmath")->min_difficulty(), 1);
  EXPECT_EQ(make_task("wordmath")->max_difficulty(), 4);
  EXPECT_EQ(make_task("carry")->min_difficulty(), 1);
  EXPECT_EQ(make_task("carry")->max_difficulty(), 5);
  EXPECT_EQ(make_task("hops")->min_difficulty(), 1);
  EXPECT_EQ(make_task("hops")->max_difficulty(), 7);
}

// ---------------------------------------------------------------- every task, every difficulty

TEST(TaskAll, OwnSolutionVerifiesAndPerturbedAnswersDoNot) {
  for (const auto& n : task_names()) {
    auto t = make_task(n);
    std::mt19937_64 rng(42);
    for (int d = t->min_difficulty(); d <= t->max_difficulty(); ++d) {
      for (int i = 0; i < 200; ++i) {
        Split split = i % 4 == 0 ? Split::kTest : Split::kTrain;
        Problem p = t->sample(rng, d, split);
        SCOPED_TRACE(n + " d=" + std::to_string(d) + " prompt=" + p.prompt);
        EXPECT_EQ(p.task, n);
        EXPECT_EQ(p.difficulty, d);
        EXPECT_EQ(split_of(p.prompt), split);
        const std::string sol = t->solution(p);
        EXPECT_TRUE(printable_ascii(p.prompt + sol));
        EXPECT_EQ(count_char(sol, '='), expected_equations(n, d)) << sol;
        const auto parsed = parse_response(sol, true);
        ASSERT_EQ(parsed.kind, ResponseKind::kLocalAnswer) << sol;
        EXPECT_TRUE(parsed.well_formatted) << sol;
        EXPECT_TRUE(t->verify(p, parsed.answer)) << sol;
        EXPECT_TRUE(t->verify(p, p.answer));
        EXPECT_FALSE(t->verify(p, off_by_one(p))) << off_by_one(p);
        EXPECT_FALSE(t->verify(p, "banana"));
        EXPECT_FALSE(t->verify(p, ""));
        EXPECT_FALSE(t->verify(p, parsed.answer + " " + parsed.answer));
      }
    }
  }
}

TEST(TaskAll, TrainAndTestPromptsAreDisjoint) {
  for (const auto& n : task_names()) {
    auto t = make_task(n);
    for (int d = t->min_difficulty(); d <= t->max_difficulty(); ++d) {
      std::mt19937_64 rng(7);
      std::set<std::string> train;
      for (int i = 0; i < 2000; ++i) train.insert(t->sample(rng, d, Split::kTrain).prompt);
      for (int i = 0; i < 200; ++i) {
        std::string q = t->sample(rng, d, Split::kTest).prompt;
        EXPECT_EQ(train.count(q), 0u) << n << " d=" << d << " test prompt in train: " << q;
      }
    }
  }
}

TEST(TaskAll, SameSeedSameProblemsDifferentSeedDifferentProblems) {
  for (const auto& n : task_names()) {
    auto t = make_task(n);
    std::mt19937_64 a(123), b(123), c(124);
    std::vector<std::string> pa, pb, pc;
    for (int d = t->min_difficulty(); d <= t->max_difficulty(); ++d)
      for (int i = 0; i < 20; ++i) {
        Problem x = t->sample(a, d, Split::kTrain), y = t->sample(b, d, Split::kTrain);
        EXPECT_EQ(x.prompt, y.prompt);
        EXPECT_EQ(x.answer, y.answer);
        pa.push_back(x.prompt);
        pc.push_back(t->sample(c, d, Split::kTrain).prompt);
      }
    EXPECT_NE(pa, pc) << n;
    // Many distinct prompts, not a handful repeated.
    EXPECT_GT(std::set<std::string>(pa.begin(), pa.end()).size(), pa.size() * 3 / 4) << n;
  }
}

// ---------------------------------------------------------------- chain

TEST(ChainTask, WorkedSolutionFormat) {
  auto t = make_task("chain");
  Problem p{"chain", "Q:23 +4 -7?", "20", 2};
  EXPECT_EQ(t->solution(p), "23+4=27 27-7=20 Answer: 20");
  EXPECT_TRUE(t->verify(p, "20"));
  EXPECT_TRUE(t->verify(p, " 20.0 "));
  EXPECT_FALSE(t->verify(p, "21"));
  EXPECT_THROW(t->solution(Problem{"chain", "Q:23 *4?", "92", 1}), Error);

  // A known seed pins the generator: a change here silently changes every dataset and checkpoint's eval.
  std::mt19937_64 rng(2024);
  Problem q = t->sample(rng, 3, Split::kTrain);
  const std::string sol = t->solution(q);
  std::printf("chain seed 2024, d=3: %s  %s\n", q.prompt.c_str(), sol.c_str());
  EXPECT_EQ(q.prompt, "Q:6 +5 -8 +7?");
  EXPECT_EQ(sol, "6+5=11 11-8=3 3+7=10 Answer: 10");
  EXPECT_EQ(q.answer, "10");
  EXPECT_EQ(q.prompt.substr(0, 2), "Q:");
  EXPECT_EQ(q.prompt.back(), '?');
  EXPECT_EQ(count_char(q.prompt, ' '), 3);
  EXPECT_EQ(count_char(sol, '='), 3);
  EXPECT_EQ(sol.substr(sol.size() - 8 - q.answer.size()), "Answer: " + q.answer);
}

TEST(ChainTask, ValuesStayInRangeAndLongestItemFitsContext) {
  auto t = make_task("chain");
  std::mt19937_64 rng(5);
  size_t longest = 0;
  for (int i = 0; i < 2000; ++i) {
    Problem p = t->sample(rng, t->max_difficulty(), i % 8 ? Split::kTrain : Split::kTest);
    const std::string sol = t->solution(p);
    // prompt + '\n' (the chat template's separator) + solution; <bos>/<eos> add 2 more tokens.
    longest = std::max(longest, p.prompt.size() + 1 + sol.size());
    int v = std::stoi(p.answer);
    EXPECT_GE(v, 0);
    EXPECT_LE(v, 99);
    for (size_t pos = sol.find('='); pos != std::string::npos; pos = sol.find('=', pos + 1)) {
      int mid = std::stoi(sol.substr(pos + 1));
      EXPECT_GE(mid, 0);
      EXPECT_LE(mid, 99);
    }
  }
  // Measured: 104 characters at k = 8, which is also the worst case (prompt 'Q:dd' + 8 x ' +d' + '?' = 29,
  // '\n', 8 x 'dd+d=dd ' + 'Answer: dd' = 74): with <bos>/<eos>, 106 of the tiny models' 256 positions.
  std::printf("chain longest prompt+newline+solution at k=8: %zu chars\n", longest);
  EXPECT_LT(longest, 120u);
}

// ---------------------------------------------------------------- countdown

TEST(CountdownTask, ParsesPromptAndVerifiesAnyValidExpression) {
  auto t = make_task("countdown");
  Problem p{"countdown", "C:3 5 2 7=16?", "(3+5)*2", 4};
  auto puzzle = parse_countdown_prompt(p.prompt);
  EXPECT_EQ(puzzle.numbers, (std::vector<int64_t>{3, 5, 2, 7}));
  EXPECT_EQ(puzzle.target, 16);
  EXPECT_EQ(t->solution(p), "3+5=8 8*2=16 Answer: (3+5)*2");

  EXPECT_TRUE(t->verify(p, "(3+5)*2"));
  EXPECT_TRUE(t->verify(p, " 2 * ( 5 + 3 ) "));
  EXPECT_FALSE(t->verify(p, "7+3+5+2-1+1"));  // 1 is not given
  EXPECT_TRUE(t->verify(p, "7*2+5-3"));       // a different valid solution
  EXPECT_FALSE(t->verify(p, "(7-5)*(3+5)"));  // 5 used twice
  EXPECT_FALSE(t->verify(p, "2*2*2*2"));      // 2 used four times, given once
  EXPECT_FALSE(t->verify(p, "16"));           // target not given as a number
  EXPECT_FALSE(t->verify(p, "3+5+2"));        // wrong value
  EXPECT_FALSE(t->verify(p, "-3+19"));        // unary minus, 19 not given
  EXPECT_FALSE(t->verify(p, "7/(5-5)"));      // division by zero (and 5 twice)
  EXPECT_FALSE(t->verify(Problem{"countdown", "C:8 4 4 2=16?", "8*2", 4}, "8*2/(4-4)"));  // division by zero
  EXPECT_TRUE(t->verify(Problem{"countdown", "C:8 4 4 2=16?", "8*2", 4}, "8*2*(4/4)"));
  for (const char* garbage : {"((", "))", "(", "", "3+", "+", "*3", "3 5", "(3+5", "3+5)", "3//5", "abc",
                              "3.5*2", "Answer: (3+5)*2", "(3+5)*2=16", "\xff\xfe", "0*0"})
    EXPECT_FALSE(t->verify(p, garbage)) << garbage;
  EXPECT_FALSE(t->verify(p, std::string(100000, '(')));
  EXPECT_FALSE(t->verify(p, std::string(50, '(') + "3" + std::string(50, ')')));
}

TEST(CountdownTask, ExactRationalArithmetic) {
  // The classic 3 3 8 8 -> 24 needs a fractional intermediate: 8/(3-8/3) = 24 exactly.
  auto t = make_task("countdown");
  Problem p{"countdown", "C:3 3 8 8=24?", "8/(3-8/3)", 4};
  EXPECT_TRUE(t->verify(p, "8/(3-8/3)"));
  auto v = evaluate_expression("1/3+1/3+1/3");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->value, (Rational{1, 1}));
  EXPECT_EQ(v->literals, (std::vector<int64_t>{1, 3, 1, 3, 1, 3}));
  EXPECT_EQ(v->steps.size(), 5u);
  EXPECT_FALSE(evaluate_expression("999999999*999999999*999999999").has_value());  // int64 overflow
  EXPECT_FALSE(evaluate_expression("1234567890").has_value());                     // literal too long
  EXPECT_FALSE(evaluate_expression("5/0").has_value());
  EXPECT_EQ(evaluate_expression("10-2-3")->value, (Rational{5, 1}));  // left associative
  EXPECT_EQ(evaluate_expression("12/2/3")->value, (Rational{2, 1}));
  EXPECT_EQ(evaluate_expression("2+3*4")->value, (Rational{14, 1}));  // precedence
}

TEST(CountdownTask, SampledPuzzlesRespectTheRules) {
  auto t = make_task("countdown");
  std::mt19937_64 rng(9);
  for (int n = 2; n <= 5; ++n)
    for (int i = 0; i < 200; ++i) {
      Problem p = t->sample(rng, n, Split::kTrain);
      auto puzzle = parse_countdown_prompt(p.prompt);
      ASSERT_EQ(puzzle.numbers.size(), static_cast<size_t>(n)) << p.prompt;
      for (int64_t x : puzzle.numbers) {
        EXPECT_GE(x, 1);
        EXPECT_LE(x, 25);
        EXPECT_NE(x, puzzle.target) << p.prompt;
      }
      EXPECT_GE(puzzle.target, 1);
      EXPECT_LE(puzzle.target, 999);
      // The stored solution's trace uses only positive integer intermediates.
      auto v = evaluate_expression(p.answer);
      ASSERT_TRUE(v.has_value()) << p.answer;
      for (const auto& s : v->steps) EXPECT_TRUE(s.result.is_integer() && s.result.num > 0) << p.answer;
    }
}

// ---------------------------------------------------------------- wordmath

TEST(WordMathTask, ReadsLikeAWordProblemWithOneEquationPerStep) {
  auto t = make_task("wordmath");
  std::mt19937_64 rng(3);
  for (int d = 1; d <= 4; ++d) {
    Problem p = t->sample(rng, d, Split::kTrain);
    std::printf("wordmath d=%d: %s  %s\n", d, p.prompt.c_str(), t->solution(p).c_str());
    EXPECT_EQ(p.prompt.back(), '?');
    EXPECT_EQ(count_char(p.prompt, '?'), 1);
    int v = std::stoi(p.answer);
    EXPECT_GE(v, 1);
    EXPECT_LE(v, 200);
  }
  EXPECT_THROW(t->solution(Problem{"wordmath", "Tom flies to the moon. How many?", "1", 1}), Error);
}

// ---------------------------------------------------------------- numeric comparison

TEST(TaskAnswer, NumericAnswersCompareByExactValue) {
  EXPECT_TRUE(numeric_answers_equal("42", " 42 "));
  EXPECT_TRUE(numeric_answers_equal("1,000", "1000"));
  EXPECT_TRUE(numeric_answers_equal("$1,234.00", "1234"));
  EXPECT_TRUE(numeric_answers_equal("+7", "7"));
  EXPECT_TRUE(numeric_answers_equal("6.0", "6"));
  EXPECT_TRUE(numeric_answers_equal("2.50", "5/2"));
  EXPECT_TRUE(numeric_answers_equal("-3/4", "-0.75"));
  EXPECT_TRUE(numeric_answers_equal("4/2", "2"));
  EXPECT_FALSE(numeric_answers_equal("42", "43"));
  EXPECT_FALSE(numeric_answers_equal("-7", "7"));
  EXPECT_FALSE(numeric_answers_equal("0.1", "0.10000001"));
  EXPECT_FALSE(numeric_answers_equal("3, 4", "34"));  // two numbers, not a thousands comma
  EXPECT_FALSE(numeric_answers_equal("3 4", "34"));
  EXPECT_TRUE(numeric_answers_equal("$ 5", "5"));
  EXPECT_FALSE(numeric_answers_equal("42 apples", "42"));
  EXPECT_FALSE(numeric_answers_equal("", ""));
  EXPECT_FALSE(numeric_answers_equal("1/0", "1/0"));
  EXPECT_FALSE(
      numeric_answers_equal("99999999999999999999", "99999999999999999999"));  // too long: not a number
  EXPECT_FALSE(numeric_answers_equal("6.", "6"));
}

// ---------------------------------------------------------------- JSONL loader

TEST(JsonlDataset, LoadsGsm8kTrain) {
  const std::string path = std::string(HANDOFF_SOURCE_DIR) + "/../shared/data/gsm8k/train.jsonl";
  ASSERT_TRUE(std::filesystem::exists(path))
      << "GSM8K not present at " << path << " (../shared must sit beside the checkout)";
  auto problems = load_jsonl_dataset(path);
  ASSERT_EQ(problems.size(), 7473u);
  EXPECT_EQ(problems[0].task, "gsm8k");
  EXPECT_EQ(problems[0].prompt.substr(0, 30), "Natalia sold clips to 48 of he");
  EXPECT_EQ(problems[0].answer, "72");
  EXPECT_EQ(problems[0].difficulty, 2);
  for (const auto& p : problems) {
    EXPECT_TRUE(parse_numeric_answer(p.answer).has_value()) << p.answer;
    EXPECT_GE(p.difficulty, 1);
  }
}

TEST(JsonlDataset, ParsesAnswersAndSkipsBlankLines) {
  auto path = write_temp("ok.jsonl",
                         "{\"question\": \"Q1?\", \"answer\": \"a\\nb\\n#### 1,234\"}\r\n"
                         "\n"
                         "{\"question\": \"Q2?\", \"answer\": \"#### -5\", \"extra\": 1}\n");
  auto ps = load_jsonl_dataset(path, "mine");
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].task, "mine");
  EXPECT_EQ(ps[0].prompt, "Q1?");
  EXPECT_EQ(ps[0].answer, "1234");
  EXPECT_EQ(ps[0].difficulty, 2);
  EXPECT_EQ(ps[1].answer, "-5");
  EXPECT_EQ(ps[1].difficulty, 0);
}

TEST(JsonlDataset, ErrorsNameTheFileAndLine) {
  const std::string good = "{\"question\": \"q\", \"answer\": \"x\\n#### 3\"}\n";
  expect_error_mentions([] { load_jsonl_dataset("/nonexistent/dir/none.jsonl"); },
                        {"/nonexistent/dir/none.jsonl"});
  auto empty = write_temp("empty.jsonl", "");
  expect_error_mentions([&] { load_jsonl_dataset(empty); }, {empty, "no problems"});
  auto blank = write_temp("blank.jsonl", "\n  \n");
  expect_error_mentions([&] { load_jsonl_dataset(blank); }, {blank, "no problems"});
  auto bad_json = write_temp("bad.jsonl", good + "{\"question\": \"q\", \n");
  expect_error_mentions([&] { load_jsonl_dataset(bad_json); }, {bad_json + ":2", "malformed"});
  auto not_object = write_temp("array.jsonl", good + good + "[1, 2]\n");
  expect_error_mentions([&] { load_jsonl_dataset(not_object); }, {not_object + ":3"});
  auto no_answer = write_temp("noanswer.jsonl", good + "{\"question\": \"q\"}\n");
  expect_error_mentions([&] { load_jsonl_dataset(no_answer); }, {no_answer + ":2", "answer"});
  auto bad_type = write_temp("badtype.jsonl", "{\"question\": 5, \"answer\": \"#### 1\"}\n");
  expect_error_mentions([&] { load_jsonl_dataset(bad_type); }, {bad_type + ":1", "question"});
  auto no_mark =
      write_temp("nomark.jsonl", good + good + good + "{\"question\": \"q\", \"answer\": \"42\"}\n");
  expect_error_mentions([&] { load_jsonl_dataset(no_mark); }, {no_mark + ":4", "####"});
  auto nothing_after = write_temp("nothing.jsonl", "{\"question\": \"q\", \"answer\": \"x ####  \"}\n");
  expect_error_mentions([&] { load_jsonl_dataset(nothing_after); }, {nothing_after + ":1", "####"});
}
