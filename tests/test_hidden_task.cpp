// The "carry" task: a difficulty the prompt hides. Every class must have the same surface (length, number
// of steps, the same character distribution at every prompt position) while the class property (carries and
// borrows in the worked solution) really holds. The surface statistic is shown to have teeth: it separates
// chain's difficulties and a naive carry generator's classes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "eval/eval_set.h"
#include "tasks/carry_task.h"
#include "tasks/hops_task.h"
#include "tasks/task.h"

using namespace handoff;

namespace {

constexpr int kSamples = 4000;

// Largest total-variation distance, over prompt positions, between the two sets' character histograms at that
// position (a position past a prompt's end counts as the character '\0').
double max_position_tv(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t len = 0;
  for (const auto& s : a) len = std::max(len, s.size());
  for (const auto& s : b) len = std::max(len, s.size());
  double worst = 0.0;
  for (size_t pos = 0; pos < len; ++pos) {
    std::map<char, double> diff;
    for (const auto& s : a) diff[pos < s.size() ? s[pos] : '\0'] += 1.0 / a.size();
    for (const auto& s : b) diff[pos < s.size() ? s[pos] : '\0'] -= 1.0 / b.size();
    double tv = 0.0;
    for (const auto& [c, d] : diff) tv += std::fabs(d) / 2;
    worst = std::max(worst, tv);
  }
  return worst;
}

// The operands' signed ones digits, which alone decide carries ("Q:87 +24 -13 +38 -29?" -> 4, -3, 8, -9).
std::vector<int> steps_of(const std::string& p) {
  std::vector<int> out;
  for (int i = 0; i < CarryTask::kSteps; ++i)
    out.push_back((p[5 + 4 * i] == '+' ? 1 : -1) * (p[7 + 4 * i] - '0'));
  return out;
}

// A second-order statistic the task does NOT equalise: the largest TV distance, over adjacent step pairs, of
// the distributions of their ones digits' net effect s_i + s_(i+1) (17 values).
double max_adjacent_net_tv(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  double worst = 0.0;
  for (int i = 0; i + 1 < CarryTask::kSteps; ++i) {
    std::map<int, double> diff;
    for (const auto& s : a) diff[steps_of(s)[i] + steps_of(s)[i + 1]] += 1.0 / a.size();
    for (const auto& s : b) diff[steps_of(s)[i] + steps_of(s)[i + 1]] -= 1.0 / b.size();
    double tv = 0.0;
    for (const auto& [k, d] : diff) tv += std::fabs(d) / 2;
    worst = std::max(worst, tv);
  }
  return worst;
}

std::vector<std::string> prompts(const Task& t, int difficulty, uint64_t seed, int n = kSamples) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(t.sample(rng, difficulty, Split::kTrain).prompt);
  return out;
}

struct Equation {
  int lhs = 0, step = 0, rhs = 0;
};

// The equations "a+d=b" / "a-d=b" of a worked solution, read independently of the task's code.
std::vector<Equation> equations(const std::string& solution) {
  std::vector<Equation> out;
  size_t pos = 0;
  while (true) {
    const size_t eq = solution.find('=', pos);
    if (eq == std::string::npos) break;
    const size_t start = solution.rfind(' ', eq);
    const std::string lhs = solution.substr(start == std::string::npos ? 0 : start + 1, eq - (start + 1));
    const size_t op = lhs.find_first_of("+-", 1);
    const size_t end = solution.find(' ', eq);
    Equation e;
    e.lhs = std::stoi(lhs.substr(0, op));
    e.step = (lhs[op] == '+' ? 1 : -1) * std::stoi(lhs.substr(op + 1));
    e.rhs = std::stoi(solution.substr(eq + 1, end - eq - 1));
    out.push_back(e);
    pos = eq + 1;
  }
  return out;
}

// Bound on the surface statistic for two samples of 4000 from one distribution. Per position the
// histograms have at most 10 characters; the expected TV of two such samples is about
// 0.5 * 10 * sqrt(2 * 0.1 * 0.9 / 4000) * sqrt(2 / pi) = 0.027, and the largest of the positions stays
// below 0.05 (measured: 0.029-0.040); 0.06 leaves room for a different seed. Chain's difficulties and a naive
// carry generator's classes sit far above it (asserted below).
constexpr double kSurfaceTvBound = 0.06;

}  // namespace

TEST(HiddenCarryTask, WorkedSolutionFormatAndPinnedSeed) {
  auto t = make_task("carry");
  Problem p{"carry", "Q:87 +24 -13 +38 -29?", "107", 5};
  EXPECT_EQ(t->solution(p), "87+24=111 111-13=98 98+38=136 136-29=107 Answer: 107");
  EXPECT_TRUE(t->verify(p, "107"));
  EXPECT_TRUE(t->verify(p, " 107.0 "));
  EXPECT_FALSE(t->verify(p, "108"));
  // Not a carry prompt: three steps, a start outside 70..99, an operand ending in 0 or outside 11..39, no
  // '?', another operator, single-digit steps.
  for (const char* bad :
       {"Q:87 +24 -13 +38?", "Q:67 +24 -13 +38 -29?", "Q:87 +24 -10 +38 -29?", "Q:87 +44 -13 +38 -29?",
        "Q:87 +24 -13 +38 -29", "Q:87 *24 -13 +38 -29?", "Q:47 +8 -3 +9 -6?", ""})
    EXPECT_THROW(t->solution(Problem{"carry", bad, "0", 1}), Error) << bad;

  // A known seed pins the generator: a change here silently changes every dataset and checkpoint's eval.
  std::mt19937_64 rng(2024);
  std::vector<std::string> got;
  for (int d = 1; d <= 5; ++d) {
    Problem q = t->sample(rng, d, Split::kTrain);
    std::printf("carry seed 2024, d=%d: %s  %s\n", d, q.prompt.c_str(), t->solution(q).c_str());
    got.push_back(q.prompt);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"Q:85 -24 +22 -32 +16?", "Q:97 -17 +25 -13 +29?",
                                           "Q:91 -35 +37 -23 +27?", "Q:88 -39 +14 -31 +39?",
                                           "Q:77 +38 -37 +14 -15?"}));
}

TEST(HiddenCarryTask, EveryClassHasTheSameShape) {
  auto t = make_task("carry");
  std::mt19937_64 rng(11);
  size_t longest = 0;
  for (int d = 1; d <= 5; ++d)
    for (int i = 0; i < 1000; ++i) {
      Problem p = t->sample(rng, d, i % 8 ? Split::kTrain : Split::kTest);
      ASSERT_EQ(p.prompt.size(), 21u) << p.prompt;  // "Q:dd" + 4 x " +dd" + "?"
      EXPECT_EQ(std::count(p.prompt.begin(), p.prompt.end(), ' '), 4) << p.prompt;
      EXPECT_EQ(std::count_if(p.prompt.begin(), p.prompt.end(), [](char c) { return c == '+' || c == '-'; }),
                4)
          << p.prompt;
      for (int k = 1; k < 4; ++k)
        EXPECT_NE(p.prompt[5 + 4 * k], p.prompt[1 + 4 * k]) << p.prompt;  // alternating
      const std::string sol = t->solution(p);
      // prompt + '\n' (the chat template's separator) + solution; <bos>/<eos> add 2 more tokens.
      longest = std::max(longest, p.prompt.size() + 1 + sol.size());
    }
  // Worst case: 21 + 1 + 4 x "ddd+dd=ddd " + "Answer: ddd" = 77 (values reach at most 99 + 39 - 11 + 39 =
  // 166).
  std::printf("carry longest prompt+newline+solution: %zu chars\n", longest);
  EXPECT_LE(longest, 77u);
}

TEST(HiddenCarryTask, TheClassIsTheNumberOfCarriesInTheWorkedSolution) {
  auto t = make_task("carry");
  std::mt19937_64 rng(12);
  for (int d = 1; d <= 5; ++d)
    for (int i = 0; i < 500; ++i) {
      Problem p = t->sample(rng, d, Split::kTrain);
      const std::string sol = t->solution(p);
      const auto eqs = equations(sol);
      ASSERT_EQ(eqs.size(), 4u) << sol;
      int crossings = 0, value = std::stoi(p.prompt.substr(2, 2));
      for (const auto& e : eqs) {
        EXPECT_EQ(e.lhs, value) << sol;
        EXPECT_EQ(e.lhs + e.step, e.rhs) << sol;
        EXPECT_NE(e.step % 10, 0) << sol;
        EXPECT_GE(std::abs(e.step), 11) << sol;
        EXPECT_LE(std::abs(e.step), 39) << sol;
        EXPECT_GE(e.rhs, 0) << sol;
        EXPECT_LE(e.rhs, 166) << sol;
        // The ones column carries (a + b: ones digits sum past 9) or borrows (a - b: a's ones digit smaller).
        const int a = e.lhs % 10, b = std::abs(e.step) % 10;
        crossings += e.step > 0 ? a + b >= 10 : a < b;
        value = e.rhs;
      }
      EXPECT_EQ(crossings, d - 1) << sol;
      EXPECT_EQ(std::to_string(value), p.answer) << sol;
    }
}

TEST(HiddenCarryTask, FittedClassDistributionsHaveUniformMarginalsExactly) {
  CarryTask t;
  for (int d = 1; d <= 5; ++d) {
    const auto& m = t.class_model(d);
    for (double p : m.start_marginal) EXPECT_NEAR(p, 0.1, 1e-9) << "d=" << d;
    for (double p : m.pattern_marginal) EXPECT_NEAR(p, 0.5, 1e-9) << "d=" << d;
    for (const auto& row : m.step_marginal)
      for (double p : row) EXPECT_NEAR(p, 1.0 / 18, 1e-9) << "d=" << d;
  }
  EXPECT_THROW(t.class_model(0), Error);
  EXPECT_THROW(t.class_model(6), Error);
}

TEST(HiddenCarryTask, PromptCharacterHistogramsMatchAcrossClassesButNotAcrossChainDifficulties) {
  auto carry = make_task("carry");
  const auto easiest = prompts(*carry, 1, 101);
  std::printf("surface TV (max over positions, %d prompts each):\n", kSamples);
  for (int d = 2; d <= 5; ++d) {
    const auto other = prompts(*carry, d, 100 + d);
    const double tv = max_position_tv(easiest, other);
    std::printf("  carry d=1 vs d=%d: %.4f   (not equalised: adjacent steps' net effect %.4f)\n", d, tv,
                max_adjacent_net_tv(easiest, other));
    EXPECT_LT(tv, kSurfaceTvBound) << "d=" << d;
  }
  // Two samples of the same class: the statistic's own noise level.
  const auto again = prompts(*carry, 1, 999);
  const double noise = max_position_tv(easiest, again);
  std::printf("  carry d=1 vs d=1 (another seed): %.4f   (adjacent steps' net effect %.4f)\n", noise,
              max_adjacent_net_tv(easiest, again));
  EXPECT_LT(noise, kSurfaceTvBound);

  // Teeth 1: chain's difficulties differ on the surface (length), and the statistic sees it.
  auto chain = make_task("chain");
  const auto chain1 = prompts(*chain, 1, 201);
  for (int d : {2, 4, 8}) {
    const double tv = max_position_tv(chain1, prompts(*chain, d, 200 + d));
    std::printf("  chain d=1 vs d=%d: %.4f\n", d, tv);
    EXPECT_GT(tv, 0.9) << "chain d=" << d;
  }
  // Teeth 2: the same surface drawn naively (uniform start and step digits, alternating signs, kept by carry
  // count) leaks the class through the digit marginals (big steps carry more often); the statistic sees it.
  std::mt19937_64 rng(301);
  std::vector<std::string> naive_none, naive_all;
  while (naive_none.size() < static_cast<size_t>(kSamples) ||
         naive_all.size() < static_cast<size_t>(kSamples)) {
    int value = 70 + static_cast<int>(rng() % 30);
    std::string p = "Q:" + std::to_string(value);
    int crossings = 0;
    const int first_sign = rng() % 2 ? 1 : -1;
    for (int i = 0; i < 4; ++i) {
      const int s = static_cast<int>(rng() % 9) + 1, sign = i % 2 ? -first_sign : first_sign;
      const int operand = (1 + static_cast<int>(rng() % 3)) * 10 + s;
      crossings += sign > 0 ? value % 10 + s >= 10 : value % 10 < s;
      value += sign * operand;
      p += std::string(" ") + (sign > 0 ? '+' : '-') + std::to_string(operand);
    }
    p += "?";
    if (crossings == 0 && naive_none.size() < static_cast<size_t>(kSamples)) naive_none.push_back(p);
    if (crossings == 4 && naive_all.size() < static_cast<size_t>(kSamples)) naive_all.push_back(p);
  }
  const double naive_tv = max_position_tv(naive_none, naive_all);
  std::printf("  naive generator, 0 vs 4 carries: %.4f\n", naive_tv);
  EXPECT_GT(naive_tv, 3 * kSurfaceTvBound);
}

// ---- hops: chain steps along a pointer walk whose length the prompt hides (src/tasks/hops_task.h) ----

namespace {

struct HopsGraph {
  int start = 0;
  std::map<char, char> next;
  std::map<char, int> step;
};

// The graph of a hops prompt, read independently of the task's code ("Q:23 e+5>e ..." -> next['e'] = 'e',
// step['e'] = +5).
HopsGraph graph_of(const std::string& prompt) {
  HopsGraph g;
  g.start = std::stoi(prompt.substr(2, 2));
  for (size_t at = 4; at + 5 < prompt.size(); at += 6) {
    g.next[prompt[at + 1]] = prompt[at + 5];
    g.step[prompt[at + 1]] = (prompt[at + 2] == '+' ? 1 : -1) * (prompt[at + 3] - '0');
  }
  return g;
}

}  // namespace

TEST(HiddenHopsTask, WorkedSolutionFormatAndBadPrompts) {
  auto t = make_task("hops");
  const std::string prompt = "Q:23 e+5>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h?";
  ASSERT_EQ(prompt.size(), 53u);
  Problem p{"hops", prompt, "21", 2};
  EXPECT_EQ(t->solution(p), "a>c 23-4=19 c>e 19+2=21 e>e Answer: 21");
  EXPECT_TRUE(t->verify(p, "21"));
  EXPECT_TRUE(t->verify(p, " 21.0 "));
  EXPECT_FALSE(t->verify(p, "19"));
  // Values may go negative.
  EXPECT_EQ(t->solution(Problem{"hops", "Q:20 a-9>b b-9>c c-9>d d-9>e e-9>e f+1>b g+1>b h+1>b?", "-16", 4}),
            "a>b 20-9=11 b>c 11-9=2 c>d 2-9=-7 d>e -7-9=-16 e>e Answer: -16");
  // Not a hops prompt: a node missing, a node twice, a target outside a..h, a zero step, no '?', a
  // one-digit start, and a walk that loops without a fixed point (a -> b -> a).
  for (const std::string& bad :
       {std::string("Q:23 e+5>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d?"),
        std::string("Q:23 e+5>e e-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h?"),
        std::string("Q:23 e+5>e h-2>b a-4>z d+1>g c+2>e b-8>f g+3>d f-6>h?"),
        std::string("Q:23 e+0>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h?"),
        std::string("Q:23 e+5>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h."),
        std::string("Q:3 e+5>e h-2>b a-4>c d+1>g c+2>e b-8>f g+3>d f-6>h??"),
        std::string("Q:23 e+5>e h-2>b a-4>b d+1>g c+2>e b-8>a g+3>d f-6>h?"), std::string()})
    EXPECT_THROW(t->solution(Problem{"hops", bad, "0", 1}), Error) << bad;

  // A known seed pins the generator: a change here silently changes every dataset and checkpoint's eval.
  std::mt19937_64 rng(2024);
  std::vector<std::string> got;
  for (int d = 1; d <= 3; ++d) {
    Problem q = t->sample(rng, d, Split::kTrain);
    std::printf("hops seed 2024, d=%d: %s  %s\n", d, q.prompt.c_str(), t->solution(q).c_str());
    got.push_back(q.prompt);
  }
  EXPECT_EQ(got.size(), 3u);
}

TEST(HiddenHopsTask, TheClassIsTheWalkLengthAndTheAnswerTheChainAlongIt) {
  auto t = make_task("hops");
  std::mt19937_64 rng(21);
  size_t longest = 0;
  for (int d = 1; d <= HopsTask::kMaxHops; ++d)
    for (int i = 0; i < 500; ++i) {
      Problem p = t->sample(rng, d, i % 8 ? Split::kTrain : Split::kTest);
      ASSERT_EQ(p.prompt.size(), 53u) << p.prompt;
      const HopsGraph g = graph_of(p.prompt);
      ASSERT_EQ(g.next.size(), 8u) << p.prompt;
      EXPECT_GE(g.start, 20);
      EXPECT_LE(g.start, 79);
      int fixed = 0;
      for (const auto& [from, to] : g.next) {
        EXPECT_NE(to, 'a') << p.prompt;  // nothing points back to the start
        fixed += from == to;
        EXPECT_NE(g.step.at(from), 0) << p.prompt;
      }
      EXPECT_EQ(fixed, 1) << p.prompt;
      char at = 'a';
      int moves = 0, value = g.start;
      while (g.next.at(at) != at && moves <= 8) value += g.step.at(at), at = g.next.at(at), ++moves;
      EXPECT_EQ(moves, d) << p.prompt;
      EXPECT_EQ(p.answer, std::to_string(value)) << p.prompt;
      const std::string sol = t->solution(p);
      EXPECT_TRUE(t->verify(p, sol.substr(sol.rfind(' ') + 1))) << sol;
      EXPECT_EQ(std::count(sol.begin(), sol.end(), '>'), d + 1) << sol;  // every move plus the fixed point
      EXPECT_EQ(std::count(sol.begin(), sol.end(), '='), d) << sol;      // one chain step per move
      longest = std::max(longest, p.prompt.size() + 1 + sol.size());
    }
  // 53 + 1 + 7 x ("x>y " + "ddd+d=ddd ") + "x>x Answer: ddd" stays under 180: context 192 leaves room.
  std::printf("hops longest prompt+newline+solution: %zu chars\n", longest);
  EXPECT_LE(longest, 180u);
}

TEST(HiddenHopsTask, PromptCharacterHistogramsMatchAcrossClasses) {
  auto hops = make_task("hops");
  const auto easiest = prompts(*hops, 1, 401);
  std::printf("hops surface TV (max over positions, %d prompts each):\n", kSamples);
  for (int d : {2, 4, 7}) {
    const double tv = max_position_tv(easiest, prompts(*hops, d, 400 + d));
    std::printf("  hops d=1 vs d=%d: %.4f\n", d, tv);
    EXPECT_LT(tv, kSurfaceTvBound) << "d=" << d;
  }
  const double noise = max_position_tv(easiest, prompts(*hops, 1, 999));
  std::printf("  hops d=1 vs d=1 (another seed): %.4f\n", noise);
  EXPECT_LT(noise, kSurfaceTvBound);
}

// A preset's weighted mix (hops-mix lists class 1 seven times): a class listed k times gets k * n items, its
// first n the items a single listing gives (recorded sets do not move), none repeated.
TEST(HiddenHopsTask, AWeightedMixGivesEachListingItsOwnItems) {
  const HopsTask task;
  const auto single = make_eval_set(task, {1, 2}, 5, 7);
  const auto mixed = make_eval_set(task, {1, 2, 1, 1}, 5, 7);
  ASSERT_EQ(mixed.size(), 20u);
  for (size_t i = 0; i < 15; ++i) EXPECT_EQ(mixed[i].difficulty, 1);
  for (size_t i = 15; i < 20; ++i) EXPECT_EQ(mixed[i].difficulty, 2);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(mixed[i].prompt, single[i].prompt);
    EXPECT_EQ(mixed[15 + i].prompt, single[5 + i].prompt);
  }
  std::set<std::string> prompts;
  for (const auto& p : mixed) prompts.insert(p.prompt);
  EXPECT_EQ(prompts.size(), mixed.size());
  EXPECT_EQ(distinct_difficulties({3, 1, 3, 1, 2}), (std::vector<int>{3, 1, 2}));
}
