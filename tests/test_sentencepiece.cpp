// SentencePiece tokenizers (tokenizer.model, Llama-2 style): a small BPE model is trained here with
// libsentencepiece's trainer, configured like Llama-2's (identity normalization, spaces kept, byte fallback,
// digits split, <unk>=0 <s>=1 </s>=2, no pad), so encoding is compared with SentencePiece itself, decoding
// must give the text back exactly, and the Llama-2 chat format is checked token by token and, rendered,
// against Jinja running the real Llama-2-chat template.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fcntl.h>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/add_special_token.h"
#include "io/checkpoint.h"
#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/sentencepiece_library.h"
#include "tokenizer/sentencepiece_tokenizer.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const char* kPython = "/usr/bin/python3";

// meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json "chat_template" (decoded from JSON).
const char* kLlama2Template =
    R"TMPL({% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %})TMPL";

// A few hundred varied lines: words, digits, arithmetic prompts, punctuation.
std::string corpus() {
  const char* subjects[] = {"The device", "A small model", "The cloud", "Every router",
                            "Our solver", "She",           "They"};
  const char* verbs[] = {"answers", "forwards", "computes", "checks", "writes", "reads", "hands off"};
  const char* objects[] = {"the query", "a reply", "the sum", "seven tokens", "its reasoning", "the answer"};
  const char* tails[] = {"quickly.", "before noon.", "on 2 cores.", "with care!", "again?", "in Tokyo."};
  std::string out;
  unsigned state = 12345;
  auto next = [&] { return state = state * 1103515245u + 12345u, (state >> 8) & 0xffff; };
  for (int i = 0; i < 400; ++i) {
    out += std::string(subjects[next() % 7]) + " " + verbs[next() % 7] + " " + objects[next() % 6] + " " +
           std::to_string(next() % 1000) + " times " + tails[next() % 6] + "\n";
    if (i % 3 == 0)
      out += "Q:" + std::to_string(next() % 10) + " +" + std::to_string(next() % 10) + " -" +
             std::to_string(next() % 10) + "? Answer: " + std::to_string(next() % 20) + "\n";
  }
  return out;
}

// The trained model, shared by every test: training takes a moment.
class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("sp_model");
    write_file_atomic(dir_->str("corpus.txt"), corpus());
    const std::string args = "--input=" + dir_->str("corpus.txt") + " --model_prefix=" + dir_->str("sp") +
                             " --vocab_size=420 --model_type=bpe --character_coverage=1.0"
                             " --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=-1 --byte_fallback=true"
                             " --split_digits=true --normalization_rule_name=identity"
                             " --remove_extra_whitespaces=false --num_threads=1";
    train_sentencepiece(args);
    model_bytes_ = new std::string(read_file(dir_->str("sp.model")));
    sp_ = SentencePieceModel::load(*model_bytes_, "sp.model").release();
  }
  static void TearDownTestSuite() {
    delete sp_;
    delete model_bytes_;
    delete dir_;
  }

  // A checkpoint-style tokenizer directory: tokenizer.model plus `config` as tokenizer_config.json.
  static void write_dir(const std::string& dir, const json& config = nullptr) {
    fs::create_directories(dir);
    write_file_atomic(dir + "/tokenizer.model", *model_bytes_);
    if (!config.is_null()) write_file_atomic(dir + "/tokenizer_config.json", config.dump(2));
  }
  static std::vector<int> sp_encode(const std::string& text) { return sp_->encode(text); }
  static int pieces() { return sp_->piece_size(); }

  static TempDir* dir_;
  static std::string* model_bytes_;
  static SentencePieceModel* sp_;  // SentencePiece itself, to compare with
};

TempDir* SentencePieceTest::dir_ = nullptr;
std::string* SentencePieceTest::model_bytes_ = nullptr;
SentencePieceModel* SentencePieceTest::sp_ = nullptr;

std::vector<int> concat(std::initializer_list<std::vector<int>> parts) {
  std::vector<int> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace

TEST_F(SentencePieceTest, EncodesAsSentencePieceAndDecodesTheTextBack) {
  TempDir d("sp_roundtrip");
  write_dir(d.str());
  auto tok = SentencePieceTokenizer::load(d.str());
  ASSERT_EQ(pieces(), 420);
  EXPECT_EQ(tok->vocab_size(), 420);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->pad_id(), 2);  // no pad piece: eos
  EXPECT_EQ(tok->handoff_id(), -1);
  EXPECT_EQ(tok->to_json(), "");

  const std::vector<std::string> texts = {
      "",
      "a",
      "The device answers the query 17 times quickly.",
      "Q:5 +4 -7? Answer: 2",
      "12345",
      "3.14159 and 2,718",
      " leading space",
      "   three leading spaces",
      "trailing space ",
      "two  spaces   three    four",
      "\ttab\tseparated\t",
      "line one\nline two\n\nline four",
      "\n",
      " ",
      "     ",
      "UPPER lower MiXeD",
      "punctuation!?.,;:'\"()[]{}",
      "<s> is not special inside a word: a<s>b",
      "東京 in Tokyo",
      "emoji 🙂 and accents: café naïve",
      "nbsp\u00a0here",
      "Ελληνικά και русский",
      "zero 0, one 1, nine 9, ten 10, hundred 100",
      "2024-07-26T12:00:00Z",
      "x=1; y=x+2; print(y*3)",
      "They hands off its reasoning 999 times again?",
      "She computes the sum 0 times in Tokyo.",
      "Every router forwards a reply 42 times before noon.",
      "Our solver checks seven tokens 7 times with care!",
      "A small model reads the answer 512 times on 2 cores.",
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "the the the the the",
      "word",
      "Word",
      "WORD",
      "-1 -2 -3",
      "+4+5+6",
      "#### 42",
      "\\boxed{17}",
      "$x^2 + y^2 = z^2$",
      "a\r\nb",
      "end with newline\n",
      "~`@#$%^&*_|",
      "CamelCaseIdentifierName",
      "snake_case_identifier_name",
      "0x1F 0b1010 0o17",
      "1e-9 and 6.02e23",
      "mixed 1a2b3c",
      "Q:1 +2?",
      "answer: <handoff>-like text without the token",
  };
  for (const auto& s : texts) {
    const auto ids = tok->encode(s);
    // Without added tokens this tokenizer is SentencePiece itself ("<s>" is cut out first: see below).
    if (s.find("<s>") == std::string::npos) {
      EXPECT_EQ(ids, sp_encode(s)) << s;
    }
    // Identity normalization, spaces kept, byte fallback: decoding gives back the exact text.
    EXPECT_EQ(tok->decode(ids), s) << s;
    for (int id : ids) EXPECT_TRUE(id >= 0 && id < tok->vocab_size()) << s;
  }
  // Digits are split one by one (--split_digits, as Llama-2), and unseen characters fall back to bytes.
  const auto digits = tok->encode("12345");
  ASSERT_EQ(digits.size(), 6u);  // "▁" then five digits
  EXPECT_EQ(sp_->id_to_piece(digits[5]), "5");
  const auto tokyo = tok->encode("東");
  EXPECT_GE(tokyo.size(), 3u);
  EXPECT_TRUE(sp_->is_byte(tokyo.back()));
  // Ids outside the vocabulary are skipped, as in transformers.
  EXPECT_EQ(tok->decode({-1, 5000}), "");
}

TEST_F(SentencePieceTest, ControlPiecesAndAddedTokensAreSingleIds) {
  TempDir d("sp_added");
  const int handoff = pieces(), calc = pieces() + 1;
  write_dir(d.str(), {{"added_tokens_decoder",
                       {{"0", {{"content", "<unk>"}, {"special", true}}},
                        {"1", {{"content", "<s>"}, {"special", true}}},
                        {"2", {{"content", "</s>"}, {"special", true}}},
                        {std::to_string(handoff), {{"content", "<handoff>"}, {"special", true}}},
                        {std::to_string(calc), {{"content", "<calc>"}, {"special", false}}}}},
                      {"bos_token", "<s>"},
                      {"eos_token", "</s>"}});
  auto tok = load_tokenizer(d.str());
  ASSERT_NE(dynamic_cast<SentencePieceTokenizer*>(tok.get()), nullptr);
  EXPECT_EQ(tok->vocab_size(), pieces() + 2);
  EXPECT_EQ(tok->handoff_id(), handoff);

  // The text around an added token is encoded piece by piece, each with SentencePiece's own "▁" prefix.
  const std::string text = "reasoning 12 <handoff> done";
  const auto ids = tok->encode(text);
  EXPECT_EQ(ids, concat({sp_encode("reasoning 12 "), {handoff}, sp_encode(" done")}));
  EXPECT_EQ(std::count(ids.begin(), ids.end(), handoff), 1);
  EXPECT_EQ(tok->decode(ids), text);
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "reasoning 12  done");
  EXPECT_EQ(tok->encode("<handoff>"), std::vector<int>{handoff});
  EXPECT_EQ(tok->encode("<handoff><handoff>"), (std::vector<int>{handoff, handoff}));

  // A non-special added token is one id too, and survives skip_special.
  const auto with_calc = tok->encode("a<calc>b");
  EXPECT_EQ(with_calc, concat({sp_encode("a"), {calc}, sp_encode("b")}));
  EXPECT_EQ(tok->decode(with_calc, true), "a<calc>b");

  // Control pieces written literally are their ids, as transformers' LlamaTokenizer treats special tokens.
  EXPECT_EQ(tok->encode("<s>hi</s>"), concat({{1}, sp_encode("hi"), {2}}));
  EXPECT_EQ(tok->encode("<unk>"), std::vector<int>{0});
  EXPECT_EQ(tok->decode({1, 2}), "<s></s>");
  EXPECT_EQ(tok->decode({1, 2}, true), "");
  const auto hi = tok->encode("<s>hi there</s>");
  EXPECT_EQ(tok->decode(hi), "<s>hi there</s>");
  EXPECT_EQ(tok->decode(hi, true), "hi there");

  // A config whose added token disagrees with the model's piece is refused, naming the file.
  TempDir bad("sp_added_bad");
  write_dir(bad.str(), {{"added_tokens_decoder", {{"1", {{"content", "<handoff>"}, {"special", true}}}}}});
  const std::string msg = error_of([&] { load_tokenizer(bad.str()); });
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("<handoff>"), std::string::npos) << msg;
}

TEST_F(SentencePieceTest, ChatUsesTheLlama2Format) {
  TempDir d("sp_chat");
  write_dir(d.str(), {{"added_tokens_decoder",
                       {{std::to_string(pieces()), {{"content", "<handoff>"}, {"special", true}}}}}});
  auto tok = SentencePieceTokenizer::load(d.str());
  EXPECT_EQ(tok->chat_template().kind, ChatTemplate::Kind::kLlama2);  // no template in the config: Llama-2

  // One user turn: <s> then "[INST] ... [/INST]" encoded as one piece of text.
  EXPECT_EQ(tok->encode_query("What is 2+2?"), concat({{1}, sp_encode("[INST] What is 2+2? [/INST]")}));
  // A system message sits inside the first [INST]; the template strips the combined text, not the user's
  // part.
  const auto with_system = tok->encode_chat({{"system", "Be brief."}, {"user", "  Q:1 +2? \n"}});
  EXPECT_EQ(with_system,
            concat({{1}, sp_encode("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Q:1 +2? [/INST]")}));
  // Multi-turn: each reply closed by </s>, each user turn opened by <s>.
  const auto multi = tok->encode_chat({{"user", "a"}, {"assistant", "b <handoff>"}, {"user", "c"}});
  EXPECT_EQ(multi, concat({{1},
                           sp_encode("[INST] a [/INST] b "),
                           {pieces()},
                           sp_encode(" "),
                           {2},
                           {1},
                           sp_encode("[INST] c [/INST]")}));
  EXPECT_EQ(tok->decode(multi), "<s>[INST] a [/INST] b <handoff> </s><s>[INST] c [/INST]");

  EXPECT_NE(error_of([&] {
              tok->encode_chat({{"assistant", "first"}});
            }).find("alternate"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              tok->encode_chat({{"user", "a"}, {"user", "b"}});
            }).find("alternate"),
            std::string::npos);
  EXPECT_NE(error_of([&] { tok->encode_chat({{"tool", "{}"}}); }).find("'tool'"), std::string::npos);

  // The real template in tokenizer_config.json is recognised; Mistral's [INST] template is refused at load.
  TempDir t("sp_chat_tmpl");
  write_dir(t.str(), {{"chat_template", kLlama2Template}, {"bos_token", "<s>"}, {"eos_token", "</s>"}});
  auto templated = load_tokenizer(t.str());
  EXPECT_EQ(templated->encode_chat({{"user", "hi"}}), tok->encode_chat({{"user", "hi"}}));
  write_dir(t.str(),
            {{"chat_template",
              "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
              "message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token}}{% endif "
              "%}{% endfor %}"}});
  const std::string msg = error_of([&] { load_tokenizer(t.str()); });
  EXPECT_NE(msg.find("tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not recognised"), std::string::npos) << msg;
}

// The native Llama-2 rendering against Jinja (python3-jinja2) rendering the real template, as
// tests/test_chat_template.cpp does for ChatML and Llama-3; a conversation Jinja refuses must throw.
TEST_F(SentencePieceTest, Llama2ChatTemplateMatchesJinja) {
  ASSERT_TRUE(handoff::testing::reference_installed(
      std::system((std::string(kPython) + " -c 'import jinja2' > /dev/null 2>&1").c_str()) == 0,
      std::string(kPython) + " with jinja2 (Debian python3-jinja2)", "apt-get install python3-jinja2"));
  const std::vector<std::vector<ChatMessage>> conversations = {
      {{"system", "You are a careful solver."}, {"user", "Q:5 +4 -7?"}},
      {{"user", "What is 2+2?"}},
      {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello! How can I help?"}, {"user", "Joke?"}},
      {{"user", "  padded with spaces and newlines \n\n"}, {"assistant", "\tanswer\n"}, {"user", "ok"}},
      {{"user", "multi\nline\n\ncontent with 東京 and 🙂 and \u00a0nbsp\u00a0"}},
      {{"user", "a"}, {"assistant", "b"}, {"user", "c"}, {"system", "late system note"}, {"user", "d"}},
      {{"system", ""}, {"user", "empty system"}},
      {{"user", ""}},
      {{"system", "  spaced system  \n"}, {"user", "x"}},
      {{"user", "reasoning... <handoff>"}, {"assistant", "<handoff>"}, {"user", "again"}},
      {{"user", "ends with a reply"}, {"assistant", "reply"}},
      {{"assistant", "starts with the assistant"}},
      {{"user", "a"}, {"user", "b"}},
      {{"system", "s"}, {"system", "t"}, {"user", "u"}},
      {{"system", "only a system message"}},
  };
  TempDir d("sp_jinja");
  json conv = json::array();
  for (const auto& c : conversations) {
    json msgs = json::array();
    for (const auto& m : c) msgs.push_back({{"role", m.role}, {"content", m.content}});
    conv.push_back(msgs);
  }
  // transformers' apply_chat_template in miniature; null where the template raises.
  write_file_atomic(d.str("render.py"), R"PY(
import json, sys
import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)

req = json.load(open(sys.argv[1], encoding="utf-8"))
env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
env.globals["raise_exception"] = raise_exception
template = env.from_string(req["template"])
out = []
for c in req["conversations"]:
    try:
        out.append(template.render(messages=c, add_generation_prompt=True, bos_token="<s>", eos_token="</s>"))
    except jinja2.exceptions.TemplateError:
        out.append(None)
sys.stdout.write(json.dumps(out))
)PY");
  write_file_atomic(d.str("request.json"),
                    json{{"template", kLlama2Template}, {"conversations", conv}}.dump());
  const std::string cmd =
      std::string(kPython) + " " + d.str("render.py") + " " + d.str("request.json") + " 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  const json ref = json::parse(out);
  ASSERT_EQ(ref.size(), conversations.size());

  const ChatTemplate t = ChatTemplate::parse(kLlama2Template, "<s>", "tokenizer_config.json", "</s>");
  ASSERT_EQ(t.kind, ChatTemplate::Kind::kLlama2);
  int refused = 0;
  for (size_t i = 0; i < conversations.size(); ++i) {
    if (ref[i].is_null()) {
      ++refused;
      EXPECT_NE(error_of([&] { render_chat(t, conversations[i]); }), "(no error)") << "conversation " << i;
    } else {
      EXPECT_EQ(render_chat(t, conversations[i]), ref[i].get<std::string>()) << "conversation " << i;
    }
  }
  EXPECT_EQ(refused, 3);  // assistant first, user after user, and a second system message first
  EXPECT_EQ(ref[0], "<s>[INST] <<SYS>>\nYou are a careful solver.\n<</SYS>>\n\nQ:5 +4 -7? [/INST]");
}

TEST_F(SentencePieceTest, LoadTokenizerChoosesByTheFilesPresent) {
  // tokenizer.model alone.
  TempDir only("sp_only_model");
  write_dir(only.str());
  EXPECT_NE(dynamic_cast<SentencePieceTokenizer*>(load_tokenizer(only.str()).get()), nullptr);

  // A byte-level BPE tokenizer.json next to tokenizer.model: tokenizer.json wins, as in transformers.
  json vocab = json::object();
  for (int b = 33; b <= 126; ++b) vocab[std::string(1, static_cast<char>(b))] = b - 33;
  const json bpe = {
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}};
  TempDir both("sp_both");
  write_dir(both.str());
  write_file_atomic(both.str("tokenizer.json"), bpe.dump());
  EXPECT_NE(dynamic_cast<BpeTokenizer*>(load_tokenizer(both.str()).get()), nullptr);

  // transformers' conversion of a SentencePiece model (byte fallback, "▁" decoder), as Llama-2 ships next to
  // tokenizer.model: the model is read instead, with the conversion's added tokens (where `handoff add-token`
  // records them when tokenizer_config.json has no "added_tokens_decoder").
  const json converted = {
      {"added_tokens", {{{"id", pieces()}, {"content", "<handoff>"}, {"special", true}}}},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}}}}},
      {"model",
       {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", json::object()}, {"merges", json::array()}}}};
  TempDir conv("sp_converted");
  write_dir(conv.str());
  write_file_atomic(conv.str("tokenizer.json"), converted.dump());
  auto tok = load_tokenizer(conv.str());
  ASSERT_NE(dynamic_cast<SentencePieceTokenizer*>(tok.get()), nullptr);
  EXPECT_EQ(tok->handoff_id(), pieces());
  EXPECT_EQ(tok->encode("x<handoff>"), concat({sp_encode("x"), {pieces()}}));

  // Neither file: the error names what is missing.
  TempDir none("sp_none");
  const std::string msg = error_of([&] { load_tokenizer(none.str()); });
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tokenizer.model"), std::string::npos) << msg;
}

TEST_F(SentencePieceTest, CorruptModelFileIsAnErrorNamingIt) {
  TempDir d("sp_corrupt");
  write_file_atomic(d.str("tokenizer.model"), "this is not a protobuf");
  std::string msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find(d.str("tokenizer.model")), std::string::npos) << msg;
  EXPECT_NE(msg.find("not a valid SentencePiece model"), std::string::npos) << msg;
  write_file_atomic(d.str("tokenizer.model"), model_bytes_->substr(0, model_bytes_->size() / 2));
  msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find(d.str("tokenizer.model")), std::string::npos) << msg;
  write_file_atomic(d.str("tokenizer.model"), "");
  msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find(d.str("tokenizer.model")), std::string::npos) << msg;
}

TEST_F(SentencePieceTest, CheckpointRoundTripAndAddToken) {
  torch::set_num_threads(1);
  TempDir d("sp_ckpt");
  write_dir(d.str("tok"));
  auto tok = SentencePieceTokenizer::load(d.str("tok"));
  ModelConfig c;
  c.model_type = "llama";
  c.vocab_size = tok->vocab_size();
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = false;
  torch::manual_seed(0);
  CausalLM m(c);
  save_checkpoint(d.str("in"), m, *tok);

  // Saved as transformers' LlamaTokenizer reads it: tokenizer.model (same bytes) + tokenizer_config.json.
  EXPECT_FALSE(fs::exists(d.str("in/tokenizer.json")));
  EXPECT_EQ(read_file(d.str("in/tokenizer.model")), *model_bytes_);
  const json tc = json::parse(read_file(d.str("in/tokenizer_config.json")));
  EXPECT_EQ(tc["tokenizer_class"], "LlamaTokenizer");
  EXPECT_EQ(tc["bos_token"], "<s>");
  EXPECT_EQ(tc["eos_token"], "</s>");
  EXPECT_EQ(tc["added_tokens_decoder"]["1"]["content"], "<s>");

  auto loaded = load_checkpoint(d.str("in"));
  ASSERT_NE(dynamic_cast<SentencePieceTokenizer*>(loaded.tokenizer.get()), nullptr);
  const std::string text = "Q:5 +4 -7? Answer: 2";
  EXPECT_EQ(loaded.tokenizer->encode(text), tok->encode(text));
  EXPECT_EQ(loaded.tokenizer->encode_query(text), tok->encode_query(text));
  EXPECT_EQ(loaded.tokenizer->vocab_size(), pieces());
  EXPECT_EQ(loaded.tokenizer->handoff_id(), -1);

  // `handoff add-token` on a SentencePiece checkpoint: the token goes to tokenizer_config.json only.
  const AddedToken a = add_special_token(d.str("in"), d.str("out"));
  EXPECT_EQ(a.id, pieces());
  EXPECT_EQ(a.new_vocab_size, pieces() + 1);
  EXPECT_TRUE(a.resized_lm_head);
  EXPECT_FALSE(fs::exists(d.str("out/tokenizer.json")));
  const json tc2 = json::parse(read_file(d.str("out/tokenizer_config.json")));
  EXPECT_EQ(tc2["added_tokens_decoder"][std::to_string(pieces())]["content"], "<handoff>");
  EXPECT_EQ(tc2["added_tokens_decoder"][std::to_string(pieces())]["special"], true);
  auto grown = load_checkpoint(d.str("out"));
  EXPECT_EQ(grown.tokenizer->handoff_id(), pieces());
  EXPECT_EQ(grown.tokenizer->vocab_size(), pieces() + 1);
  EXPECT_EQ(grown.model->config.vocab_size, pieces() + 1);
  EXPECT_EQ(grown.tokenizer->encode("ok <handoff>"), concat({sp_encode("ok "), {pieces()}}));

  // Saved again, the added token survives; adding it twice is refused, naming tokenizer.model's directory.
  save_checkpoint(d.str("again"), grown.model, *grown.tokenizer);
  EXPECT_EQ(load_checkpoint(d.str("again")).tokenizer->handoff_id(), pieces());
  const std::string msg = error_of([&] { add_special_token(d.str("out"), d.str("out2")); });
  EXPECT_NE(msg.find("already has the token <handoff>"), std::string::npos) << msg;
}
