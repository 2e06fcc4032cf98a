// Device response parsing (paper.md §1 grammar) and the hierarchical reward table (paper §3.2), on hand-made
// inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "protocol/response.h"
#include "rl/pure/reward.h"

using namespace handoff;

namespace {

constexpr bool kEos = true, kNoEos = false;

ParsedResponse local(bool well_formatted) {
  ParsedResponse p;
  p.kind = ResponseKind::kLocalAnswer;
  p.answer = "20";
  p.well_formatted = well_formatted;
  return p;
}

ParsedResponse of_kind(ResponseKind kind) {
  ParsedResponse p;
  p.kind = kind;
  return p;
}

}  // namespace

// ---------------------------------------------------------------- parsing

TEST(ResponseTest, WellFormattedLocalAnswer) {
  const auto p = parse_response("23+4=27 27-7=20 Answer: 20", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "20");
  EXPECT_TRUE(p.well_formatted);
  EXPECT_EQ(p.reasoning, "23+4=27 27-7=20");
  // Trailing whitespace and blank lines after the answer are fine; so is an answer with inner spaces.
  EXPECT_TRUE(parse_response("x Answer: 20 \n\n", kEos).well_formatted);
  EXPECT_EQ(parse_response("Answer:  x = 3 ", kEos).answer, "x = 3");
  EXPECT_TRUE(parse_response("Answer:20", kEos).well_formatted);
  EXPECT_EQ(parse_response("Answer: 20", kEos).reasoning, "");
}

TEST(ResponseTest, ExtractableButBadlyFormatted) {
  // No EOS: generation hit the length limit right after the answer.
  auto p = parse_response("23+4=27 Answer: 27", kNoEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "27");
  EXPECT_FALSE(p.well_formatted);
  // Several "Answer:": the last one counts.
  p = parse_response("Answer: 5 hmm, no. Answer: 7", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "7");
  EXPECT_EQ(p.reasoning, "Answer: 5 hmm, no.");
  EXPECT_FALSE(p.well_formatted);
  // Trailing junk lines: the answer is its own line, the junk makes it badly formatted.
  p = parse_response("1+1=2 Answer: 2\nQ:3 +4?\n3+4=7", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "2");
  EXPECT_FALSE(p.well_formatted);
  // The answer on the line after "Answer:" is extracted but is not the grammar.
  p = parse_response("Answer:\n  42\n", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "42");
  EXPECT_FALSE(p.well_formatted);
  // A hand-off marker quoted mid-text is no call, but it breaks the format.
  p = parse_response("the token <handoff> means help. Answer: 9", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "9");
  EXPECT_FALSE(p.well_formatted);
  p = parse_response("<unknown> I need external assistance </unknown> or not. Answer: 9", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_FALSE(p.well_formatted);
}

TEST(ResponseTest, HandoffMarkerMustBeLast) {
  auto p = parse_response("23+4=27 <handoff>", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kHandoff);
  EXPECT_EQ(p.reasoning, "23+4=27");
  EXPECT_EQ(p.answer, "");
  EXPECT_FALSE(p.well_formatted);  // well_formatted describes local answers only
  // Trailing whitespace after the marker is allowed; EOS is not required (the marker ends the turn).
  EXPECT_EQ(parse_response("23+4=27 <handoff>  \n\t", kEos).kind, ResponseKind::kHandoff);
  EXPECT_EQ(parse_response("<handoff>", kNoEos).kind, ResponseKind::kHandoff);
  EXPECT_EQ(parse_response("<handoff>", kNoEos).reasoning, "");
  // A call after an attempted answer is still a call: the marker is the last thing.
  EXPECT_EQ(parse_response("Answer: 3 <handoff>", kEos).kind, ResponseKind::kHandoff);
  // Quoted mid-text with nothing to extract: neither a call nor an answer.
  p = parse_response("I could write <handoff> here and go on", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kFormatError);
  EXPECT_EQ(p.reasoning, "I could write <handoff> here and go on");
  EXPECT_EQ(parse_response("<handoff> x", kEos).kind, ResponseKind::kFormatError);
  EXPECT_EQ(parse_response("<handoff", kEos).kind, ResponseKind::kFormatError);
}

TEST(ResponseTest, PaperAliasCountsAsHandoff) {
  auto p = parse_response("Let me think. <unknown> I need external assistance </unknown>", kEos);
  EXPECT_EQ(p.kind, ResponseKind::kHandoff);
  EXPECT_EQ(p.reasoning, "Let me think.");
  EXPECT_EQ(parse_response(std::string(kHandoffAlias) + "\n", kNoEos).kind, ResponseKind::kHandoff);
  // Spacing and case inside the tags do not matter.
  EXPECT_EQ(parse_response("x <unknown>i need  External\nassistance</unknown>", kEos).kind,
            ResponseKind::kHandoff);
  // Another phrase in the tags, or an alias that is not last, is no call.
  EXPECT_EQ(parse_response("x <unknown> no idea </unknown>", kEos).kind, ResponseKind::kFormatError);
  EXPECT_EQ(parse_response("x <unknown> I need external assistance </unknown> y", kEos).kind,
            ResponseKind::kFormatError);
  EXPECT_EQ(parse_response("x I need external assistance </unknown>", kEos).kind, ResponseKind::kFormatError);
}

TEST(ResponseTest, NothingExtractableIsFormatError) {
  for (const char* text : {"", "   \n", "23+4=27 27-7=20", "Answer:", "x Answer:   \n \n", "answer: 20",
                           "Answer: 5 then Answer:"}) {
    for (bool eos : {kEos, kNoEos}) {
      const auto p = parse_response(text, eos);
      EXPECT_EQ(p.kind, ResponseKind::kFormatError) << "'" << text << "'";
      EXPECT_EQ(p.answer, "");
      EXPECT_FALSE(p.well_formatted);
    }
  }
}

TEST(ResponseTest, TotalOverArbitraryText) {
  // Random concatenations of grammar fragments and odd bytes: never throws, and the result is consistent.
  const std::vector<std::string> pieces = {"Answer:",
                                           "<handoff>",
                                           "<unknown>",
                                           "</unknown>",
                                           " ",
                                           "\n",
                                           "\t",
                                           "7",
                                           "x",
                                           "I need external assistance",
                                           std::string(1, '\0'),
                                           "\xff\xfe",
                                           "<",
                                           ">",
                                           "Answer",
                                           ":"};
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20000; ++trial) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
    const bool eos = (rng() & 1) != 0;
    ParsedResponse p;
    ASSERT_NO_THROW(p = parse_response(text, eos)) << text;
    if (p.kind == ResponseKind::kLocalAnswer) {
      EXPECT_FALSE(p.answer.empty());
      EXPECT_NE(text.find("Answer:"), std::string::npos);
    } else {
      EXPECT_TRUE(p.answer.empty());
      EXPECT_FALSE(p.well_formatted);
    }
    if (p.well_formatted) {
      EXPECT_TRUE(eos);
    }
  }
}

TEST(ResponseTest, KindNames) {
  EXPECT_EQ(response_kind_name(ResponseKind::kLocalAnswer), "local-answer");
  EXPECT_EQ(response_kind_name(ResponseKind::kHandoff), "handoff");
  EXPECT_EQ(response_kind_name(ResponseKind::kFormatError), "format-error");
}

// ---------------------------------------------------------------- the reward table

TEST(RewardTest, EveryRowOfThePaperTable) {
  const HierarchicalReward reward;  // α_a = 2.0, α_c = 0.5, α_f = 0.2
  constexpr double tol = 1e-12;
  EXPECT_NEAR(reward(local(true), true, std::nullopt), 2.2, tol);   // local, correct, formatted: α_a + α_f
  EXPECT_NEAR(reward(local(false), true, std::nullopt), 2.0, tol);  // local, correct, badly formatted: α_a
  EXPECT_NEAR(reward(of_kind(ResponseKind::kHandoff), std::nullopt, true), 0.5,
              tol);                                                 // call, cloud right: α_c
  EXPECT_NEAR(reward(local(true), false, std::nullopt), 0.2, tol);  // local, wrong, formatted: α_f
  EXPECT_EQ(reward(local(false), false, std::nullopt), 0.0);        // local, wrong, badly formatted
  EXPECT_EQ(reward(of_kind(ResponseKind::kHandoff), std::nullopt, false), 0.0);  // call, cloud wrong
  EXPECT_EQ(reward(of_kind(ResponseKind::kFormatError), std::nullopt, std::nullopt), 0.0);
  // The verdict the row does not use is ignored.
  EXPECT_NEAR(reward(local(true), true, false), 2.2, tol);
  EXPECT_NEAR(reward(of_kind(ResponseKind::kHandoff), false, true), 0.5, tol);
  EXPECT_EQ(reward(of_kind(ResponseKind::kFormatError), true, true), 0.0);
}

TEST(RewardTest, ParsedTextsEndToEnd) {
  const HierarchicalReward reward(RewardWeights{3.0, 1.0, 0.25});
  EXPECT_DOUBLE_EQ(reward(parse_response("1+1=2 Answer: 2", kEos), true, std::nullopt), 3.25);
  EXPECT_DOUBLE_EQ(reward(parse_response("1+1=2 Answer: 2", kNoEos), true, std::nullopt), 3.0);
  EXPECT_DOUBLE_EQ(reward(parse_response("Answer: 1 Answer: 2", kEos), true, std::nullopt), 3.0);
  EXPECT_DOUBLE_EQ(reward(parse_response("1+1=3 Answer: 3", kEos), false, std::nullopt), 0.25);
  EXPECT_DOUBLE_EQ(reward(parse_response("1+1= <handoff> \n", kEos), std::nullopt, true), 1.0);
  EXPECT_DOUBLE_EQ(
      reward(parse_response("<unknown> I need external assistance </unknown>", kEos), std::nullopt, true),
      1.0);
  EXPECT_DOUBLE_EQ(reward(parse_response("<handoff> quoted, Answer: 2", kEos), true, std::nullopt), 3.0);
  EXPECT_DOUBLE_EQ(reward(parse_response("1+1=", kNoEos), std::nullopt, std::nullopt), 0.0);
  EXPECT_DOUBLE_EQ(reward(parse_response("Answer:", kEos), std::nullopt, std::nullopt), 0.0);
}

TEST(RewardTest, HierarchyOrdersTheRows) {
  // Solving alone beats calling, a useful call beats a formatted wrong guess, which beats nothing (paper
  // §3.2).
  const HierarchicalReward reward;
  const double solved = reward(local(false), true, std::nullopt);
  const double called = reward(of_kind(ResponseKind::kHandoff), std::nullopt, true);
  const double guessed = reward(local(true), false, std::nullopt);
  EXPECT_GT(solved, called);
  EXPECT_GT(called, guessed);
  EXPECT_GT(guessed, 0.0);
}

TEST(RewardTest, MissingVerdictIsAnError) {
  const HierarchicalReward reward;
  EXPECT_THROW(reward(local(true), std::nullopt, true), Error);
  EXPECT_THROW(reward(of_kind(ResponseKind::kHandoff), true, std::nullopt), Error);
}

TEST(RewardTest, WeightOrderIsValidated) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (RewardWeights w :
       {RewardWeights{0.5, 2.0, 0.2}, RewardWeights{2.0, 2.0, 0.2}, RewardWeights{2.0, 0.2, 0.5},
        RewardWeights{2.0, 0.5, 0.5}, RewardWeights{2.0, 0.5, -0.1}, RewardWeights{-1, -2, -3}}) {
    EXPECT_THROW(HierarchicalReward{w}, Error) << w.alpha_a << " " << w.alpha_c << " " << w.alpha_f;
  }
  try {
    HierarchicalReward bad(RewardWeights{0.5, 2.0, 0.2});
    FAIL() << "accepted alpha_a < alpha_c";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("alpha_a > alpha_c > alpha_f"), std::string::npos) << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  EXPECT_NO_THROW(HierarchicalReward(RewardWeights{2.0, 0.5, 0.0}));  // α_f = 0 keeps the order
  // Ablations: any order, negatives included, on request; never non-finite values.
  const HierarchicalReward reversed(RewardWeights{0.5, 2.0, -0.1}, /*allow_any_order=*/true);
  EXPECT_DOUBLE_EQ(reversed(local(true), true, std::nullopt), 0.4);
  EXPECT_DOUBLE_EQ(reversed(of_kind(ResponseKind::kHandoff), std::nullopt, true), 2.0);
  EXPECT_DOUBLE_EQ(reversed(local(true), false, std::nullopt), -0.1);
  EXPECT_THROW(HierarchicalReward(RewardWeights{nan, 0.5, 0.2}, true), Error);
  EXPECT_THROW(HierarchicalReward(RewardWeights{2.0, inf, 0.2}, true), Error);
  EXPECT_THROW(HierarchicalReward(RewardWeights{inf, 0.5, 0.2}), Error);
}

TEST(RewardTest, TaskTuningIsAccuracyOnly) {
  const TaskTuningReward accuracy;
  EXPECT_EQ(accuracy(local(true), true), 1.0);
  EXPECT_EQ(accuracy(local(false), true), 1.0);
  EXPECT_EQ(accuracy(local(true), false), 0.0);
  EXPECT_EQ(accuracy(of_kind(ResponseKind::kHandoff), std::nullopt, true), 0.0);  // a call counts as wrong
  EXPECT_EQ(accuracy(of_kind(ResponseKind::kFormatError), std::nullopt), 0.0);
  EXPECT_THROW(accuracy(local(true), std::nullopt), Error);

  const TaskTuningReward with_format(0.2);
  EXPECT_DOUBLE_EQ(with_format(local(true), true), 1.2);
  EXPECT_DOUBLE_EQ(with_format(local(false), true), 1.0);
  EXPECT_DOUBLE_EQ(with_format(local(true), false), 0.2);
  EXPECT_DOUBLE_EQ(with_format(of_kind(ResponseKind::kHandoff), std::nullopt, true), 0.0);
  for (double bad : {-0.1, 1.0, 5.0, std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THROW(TaskTuningReward{bad}, Error) << bad;
  }
}

TEST(RewardTest, MakeRewardByKind) {
  EXPECT_EQ(reward_kind_name(RewardKind::kHierarchical), "hierarchical");
  EXPECT_EQ(reward_kind_name(RewardKind::kTaskTuning), "task-tuning");
  const RewardFn hier = make_reward(RewardKind::kHierarchical);
  const RewardFn task = make_reward(RewardKind::kTaskTuning, RewardWeights{2.0, 0.5, 0.2}, false, 0.0);
  const RewardFn task_bonus = make_reward(RewardKind::kTaskTuning, RewardWeights{}, false, 0.3);
  EXPECT_DOUBLE_EQ(task_bonus(local(true), true, std::nullopt), 1.3);
  EXPECT_DOUBLE_EQ(hier(local(true), true, std::nullopt), 2.2);
  EXPECT_DOUBLE_EQ(hier(of_kind(ResponseKind::kHandoff), std::nullopt, true), 0.5);
  EXPECT_DOUBLE_EQ(task(local(true), true, std::nullopt), 1.0);
  EXPECT_DOUBLE_EQ(task(of_kind(ResponseKind::kHandoff), std::nullopt, true), 0.0);
  EXPECT_THROW(make_reward(RewardKind::kHierarchical, RewardWeights{0.1, 0.5, 0.2}), Error);
  EXPECT_NO_THROW(make_reward(RewardKind::kHierarchical, RewardWeights{0.1, 0.5, 0.2}, true));
}
