// Protocols as data (issue 17): the embedded default renders and parses exactly as before; the paper's
// protocol gives each scripted device reply the reward table's value (paper §3.2); every answer form reads
// its answers back; protocol files with bad fields, markers a tokenizer cannot write and answers a form
// cannot hold are clear errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "collab/device_run.h"
#include "protocol/protocol.h"
#include "rl/pure/reward.h"
#include "rl/sft.h"
#include "tasks/task.h"
#include "test_support.h"
#include "tokenizer/char_tokenizer.h"
#include "tokenizer/protocol_fit.h"

using namespace handoff;
using handoff::testing::error_of;

namespace {

const Protocol kDefault = load_protocol("handoff");
const Protocol kPaper = load_protocol("paper");

Protocol with_form(AnswerForm f, bool think = false) {
  Protocol p;
  p.name = answer_form_name(f);
  p.answer = f;
  p.think = think;
  return p;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("handoff_protocol_" + name);
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace

TEST(ProtocolTest, TheDefaultRendersAndParsesExactlyAsBeforeProtocols) {
  EXPECT_EQ(kDefault.name, "handoff");
  const auto m = kDefault.device_messages("Q:1 +2?");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].role, "user");
  EXPECT_EQ(m[0].content, "Q:1 +2?");
  EXPECT_EQ(kDefault.cloud_messages("Q:1 +2?")[0].content, "Q:1 +2?");
  EXPECT_EQ(kDefault.cloud_key(), "");  // cache lines written before protocols keep counting
  // The grammar is parse_response's, on every reply shape (random replies over the grammar's pieces).
  const std::vector<std::string> pieces = {"a=1 ",
                                           "Answer: 5",
                                           "Answer:",
                                           "\n",
                                           "<handoff>",
                                           " ",
                                           "<unknown> I need external assistance </unknown>",
                                           "x"};
  // The general grammar (a protocol with its own phrase takes it) reads Answer: lines as the default does
  // too.
  Protocol own_phrase;
  own_phrase.handoff = "[[help]]";
  std::mt19937_64 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string reply;
    for (int k = 0, n = static_cast<int>(rng() % 6); k < n; ++k) reply += pieces[rng() % pieces.size()];
    const bool eos = rng() % 2;
    const ParsedResponse b = parse_response(reply, eos);
    for (const Protocol* p : std::vector<const Protocol*>{&kDefault, &own_phrase}) {
      const ParsedResponse a = p->parse(reply, eos);
      ASSERT_EQ(a.kind, b.kind) << reply;
      ASSERT_EQ(a.answer, b.answer) << reply;
      ASSERT_EQ(a.well_formatted, b.well_formatted) << reply;
    }
  }
  EXPECT_EQ(own_phrase.parse("hard [[help]]", true).kind, ResponseKind::kHandoff);
  // SFT targets: the task's own solution text and "<steps> <handoff>", as the recorded runs were trained.
  auto task = make_task("chain");
  std::mt19937_64 r2(3);
  const Problem p = task->sample(r2, 3, Split::kTrain);
  std::mt19937_64 a(1), b(1), c(1);
  EXPECT_EQ(sft_target(kDefault, task->solution(p), false, a), task->solution(p));
  // The hand-off target as it was written before protocols: a random prefix of the steps, then the token.
  for (int i = 0; i < 20; ++i) {
    const std::string sol = task->solution(p);
    std::istringstream in(sol.substr(0, sol.rfind("Answer:")));
    std::vector<std::string> steps;
    for (std::string s; in >> s;) steps.push_back(s);
    std::string want;
    const size_t keep = std::uniform_int_distribution<size_t>(0, steps.size())(c);
    for (size_t k = 0; k < keep; ++k) want += steps[k] + " ";
    EXPECT_EQ(sft_target(kDefault, sol, true, b), want + "<handoff>");
  }
}

TEST(ProtocolTest, PaperRepliesGetTheRewardTablesValue) {
  const HierarchicalReward reward;  // α_a 2.0, α_c 0.5, α_f 0.2
  auto r = [&](const std::string& reply, bool eos, bool local_ok, bool cloud_ok) {
    const ParsedResponse p = kPaper.parse(reply, eos);
    return reward(p, p.kind == ResponseKind::kLocalAnswer ? std::optional<bool>(local_ok) : std::nullopt,
                  p.kind == ResponseKind::kHandoff ? std::optional<bool>(cloud_ok) : std::nullopt);
  };
  // Answer tags after the think block, finished: correct 2.2, wrong 0.2.
  EXPECT_DOUBLE_EQ(r("<think>2+3=5</think>\n<answer>5</answer>", true, true, false), 2.2);
  EXPECT_DOUBLE_EQ(r("<think>2+3=6</think> <answer>6</answer>\n", true, false, false), 0.2);
  // The hand-off phrase written last: α_c when the cloud is right, 0 when it is wrong.
  const std::string phrase =
      "<think>too long for me</think>\n<unknown> I need external assistance </unknown>";
  EXPECT_EQ(kPaper.parse(phrase, true).kind, ResponseKind::kHandoff);
  EXPECT_DOUBLE_EQ(r(phrase, true, false, true), 0.5);
  EXPECT_DOUBLE_EQ(r(phrase, true, false, false), 0.0);
  EXPECT_EQ(kPaper.parse("<think>x</think><handoff>", false).kind, ResponseKind::kHandoff);  // the token too
  // Format violated: no think block, text after the answer, two answers, an unfinished reply — α_a alone.
  EXPECT_DOUBLE_EQ(r("The sum is <answer>5</answer>", true, true, false), 2.0);
  EXPECT_DOUBLE_EQ(r("<think>a</think><answer>5</answer> done.", true, true, false), 2.0);
  EXPECT_DOUBLE_EQ(r("<think>a</think><answer>4</answer><answer>5</answer>", true, true, false), 2.0);
  EXPECT_DOUBLE_EQ(r("<think>a</think><answer>5</answer>", false, true, false), 2.0);
  EXPECT_DOUBLE_EQ(r("<think>a</think>\nwell then <answer>5</answer>", true, true, false), 2.0);
  // A quoted phrase mid-text is not a call, and it spoils the format.
  EXPECT_DOUBLE_EQ(
      r("<think>I could write <unknown> I need external assistance </unknown></think><answer>5</answer>",
        true, true, false),
      2.0);
  // No answer outside the think block: a format error, 0 — also an answer inside <think> only.
  EXPECT_EQ(kPaper.parse("<think>5</think>", true).kind, ResponseKind::kFormatError);
  EXPECT_EQ(kPaper.parse("<think><answer>5</answer></think>", true).kind, ResponseKind::kFormatError);
  EXPECT_EQ(kPaper.parse("<think>still thinking <answer>5</answer>", false).kind, ResponseKind::kFormatError);
  EXPECT_EQ(kPaper.parse("Answer: 5", true).kind, ResponseKind::kFormatError);  // not this protocol's form
  EXPECT_DOUBLE_EQ(r("<think>5</think>", true, false, false), 0.0);
  EXPECT_EQ(kPaper.parse("<think>a</think><answer> 7 </answer>", true).answer, "7");
}

TEST(ProtocolTest, EveryAnswerFormReadsItsOwnAnswersBack) {
  const Protocol boxed = with_form(AnswerForm::kBoxed), hashes = with_form(AnswerForm::kHashes);
  ParsedResponse p = boxed.parse("half of 1 is \\boxed{\\frac{1}{2}}", true);
  EXPECT_EQ(p.kind, ResponseKind::kLocalAnswer);
  EXPECT_EQ(p.answer, "\\frac{1}{2}");  // nested braces, whole
  EXPECT_TRUE(p.well_formatted);
  EXPECT_FALSE(boxed.parse("\\boxed{1} or \\boxed{2}", true).well_formatted);
  EXPECT_EQ(boxed.parse("\\boxed{1} or \\boxed{2}", true).answer, "2");
  EXPECT_EQ(boxed.parse("<think>\\boxed{3}</think>", true).kind, ResponseKind::kFormatError);
  p = hashes.parse("48/2 = 24\n#### 72", true);
  EXPECT_EQ(p.answer, "72");
  EXPECT_TRUE(p.well_formatted);
  EXPECT_FALSE(hashes.parse("#### 72\nbye", true).well_formatted);
  const Protocol line_think = with_form(AnswerForm::kAnswerLine, true);
  EXPECT_TRUE(line_think.parse("<think>1+1</think>\nAnswer: 2", true).well_formatted);
  EXPECT_FALSE(line_think.parse("1+1\nAnswer: 2", true).well_formatted);
  // SFT targets in each form parse back as well-formatted answers; hand-off targets as calls.
  auto task = make_task("countdown");
  std::mt19937_64 rng(11);
  for (const Protocol& proto : {kPaper, boxed, hashes, line_think, kDefault}) {
    for (int i = 0; i < 20; ++i) {
      const Problem q = task->sample(rng, 2 + i % 4, Split::kTrain);
      std::mt19937_64 a(i);
      const std::string t = sft_target(proto, task->solution(q), false, a);
      const ParsedResponse got = proto.parse(t, true);
      ASSERT_EQ(got.kind, ResponseKind::kLocalAnswer) << proto.name << ": " << t;
      ASSERT_TRUE(got.well_formatted) << proto.name << ": " << t;
      ASSERT_TRUE(task->verify(q, got.answer)) << proto.name << ": " << t;
      ASSERT_EQ(proto.parse(sft_target(proto, task->solution(q), true, a), true).kind,
                ResponseKind::kHandoff);
    }
  }
  EXPECT_EQ(sft_target(kPaper, "a=1 b=2\nAnswer: 3", false, rng),
            "<think>a=1 b=2</think>\n<answer>3</answer>");
}

TEST(ProtocolTest, ConversationsGetTheProtocolsTexts) {
  const auto d = kPaper.device_messages("What is 2+2?");
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].role, "system");
  EXPECT_NE(d[0].content.find("<answer>"), std::string::npos);
  EXPECT_NE(d[0].content.find("<unknown> I need external assistance </unknown>"), std::string::npos);
  EXPECT_EQ(d[1].content, "What is 2+2?");
  const auto c = kPaper.cloud_messages("What is 2+2?");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].content.rfind("What is 2+2?", 0), 0u);
  EXPECT_NE(c[0].content.find("\\boxed{}"), std::string::npos);
  EXPECT_NE(kPaper.cloud_key(), "");
  // A conversation that brings its own system message keeps it; the last user turn is the query.
  const auto conv = kPaper.device_conversation(
      {{"system", "be brief"}, {"user", "hi"}, {"assistant", "yo"}, {"user", "2+2?"}});
  ASSERT_EQ(conv.size(), 4u);
  EXPECT_EQ(conv[0].content, "be brief");
  Protocol wrapped;
  wrapped.device_user = "Question: {query}\nThink step by step.";
  EXPECT_EQ(wrapped.device_conversation({{"user", "hi"}, {"user", "2+2?"}})[1].content,
            "Question: 2+2?\nThink step by step.");
  EXPECT_EQ(wrapped.device_conversation({{"user", "hi"}, {"user", "2+2?"}})[0].content, "hi");
}

TEST(ProtocolTest, FilesRoundTripAndBadFieldsAreNamed) {
  for (const auto& name : builtin_protocol_names()) {
    const Protocol p = load_protocol(name);
    const std::string text = p.to_json_text();
    EXPECT_EQ(Protocol::from_json_text(text, "x").to_json_text(), text);
    EXPECT_EQ(load_protocol(write_temp(name + ".json", text)).to_json_text(), text);
  }
  const std::string good = kPaper.to_json_text();
  auto bad = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
    return error_of([&] { Protocol::from_json_text(t, "my.json"); });
  };
  EXPECT_NE(bad("\"think\": true,", "").find("the field \"think\" is missing"), std::string::npos);
  EXPECT_NE(bad("\"think\": true", "\"think\": true, \"colour\": 1").find("unknown field \"colour\""),
            std::string::npos);
  EXPECT_NE(bad("\"answer\": \"answer-tags\"", "\"answer\": \"tags\"").find("unknown answer form"),
            std::string::npos);
  EXPECT_NE(bad("\"user\": \"{query}\"", "\"user\": \"no query\"").find("{query} exactly once"),
            std::string::npos);
  EXPECT_NE(bad("\"user\": \"{query}\"", "\"user\": \"{query}{query}\"").find("{query} exactly once"),
            std::string::npos);
  EXPECT_NE(bad("\"think\": true", "\"think\": 1").find("think must be true or false"), std::string::npos);
  EXPECT_NE(bad("\"enable_thinking\": null", "\"enable_thinking\": \"no\"").find("enable_thinking"),
            std::string::npos);
  EXPECT_NE(bad("\"handoff\": \"<unknown>", "\"handoff\": \"\\n<unknown>").find("one line"),
            std::string::npos);
  EXPECT_NE(bad("\"handoff\": \"<unknown>", "\"handoff\": \" <unknown>").find("surrounding spaces"),
            std::string::npos);
  EXPECT_NE(
      bad("\"system\": \"You are", "\"system\": \"{query} You are").find("device.system contains {query}"),
      std::string::npos);
  EXPECT_NE(
      error_of([] { Protocol::from_json_text("{\"name\": ", "my.json"); }).find("my.json: not valid JSON"),
      std::string::npos);
  const std::string unknown = error_of([] { load_protocol("papers"); });
  EXPECT_NE(unknown.find("unknown protocol \"papers\""), std::string::npos);
  EXPECT_NE(unknown.find("paper"), std::string::npos);
  EXPECT_EQ(recorded_protocol("/nonexistent/dir").name, "handoff");
}

TEST(ProtocolTest, MarkersATokenizerCannotWriteAndAnswersAFormCannotHoldAreErrors) {
  CharTokenizer tok;
  check_protocol_fits(kDefault, tok);
  check_protocol_fits(kPaper, tok);  // printable ASCII: the phrase and the tags encode
  Protocol accented = kPaper;
  accented.name = "accented";
  accented.handoff = "<unknown> j'ai besoin d'aide \xC3\xA9 </unknown>";
  const std::string e = error_of([&] { check_protocol_fits(accented, tok); });
  EXPECT_NE(e.find("protocol \"accented\": device.handoff"), std::string::npos) << e;
  // A hand-off threshold needs the token; the paper's phrase is refused by name.
  EXPECT_NE(error_of([&] {
              device_sampling({tok, kPaper}, 0.0, 8, 1.0, 0.5);
            }).find("hand-off threshold"),
            std::string::npos);
  // An answer the form cannot hold: a GSM8K line cannot carry a newline, tags cannot carry "</answer>".
  auto task = make_task("chain");
  std::mt19937_64 rng(5);
  Problem p = task->sample(rng, 2, Split::kTest);
  require_readable({tok, kPaper}, *task, {p});
  p.answer = p.answer + "</answer>1";
  const std::string e2 = error_of([&] { require_readable({tok, kPaper}, *task, {p}); });
  EXPECT_NE(e2.find("cannot be read back from protocol \"paper\""), std::string::npos) << e2;
  p.answer = "1\n2";
  EXPECT_NE(error_of([&] {
              require_readable({tok, with_form(AnswerForm::kHashes)}, *task, {p});
            }).find("(hashes)"),
            std::string::npos);
}
