// Character tokenizer: round trips, special tokens, tokenizer.json round trip, errors on foreign input.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;

TEST(TokenizerTest, RoundTripAndSpecials) {
  CharTokenizer t;
  const std::string text = "Q:23 +4 -7?\n23+4=27 27-7=20 Answer: 20";
  auto ids = t.encode(text);
  EXPECT_EQ(ids.size(), text.size());
  EXPECT_EQ(t.decode(ids), text);
  auto with_special = t.encode("12+3=15 <handoff>");
  EXPECT_EQ(with_special.back(), t.handoff_id());
  EXPECT_EQ(t.decode(with_special), "12+3=15 <handoff>");
  EXPECT_EQ(t.decode(with_special, /*skip_special=*/true), "12+3=15 ");
  EXPECT_EQ(t.encode("<eos>"), std::vector<int>{t.eos_id()});
  EXPECT_EQ(t.encode("<notatoken>").size(), 11u);  // only known specials are special
  for (int id = 0; id < t.vocab_size(); ++id) EXPECT_EQ(t.encode(t.decode({id})), std::vector<int>{id}) << id;
}

TEST(TokenizerTest, ChatTemplateWrapsUserMessages) {
  CharTokenizer t;
  auto ids = t.encode_query("Q:1 +2?");
  EXPECT_EQ(ids.front(), t.bos_id());
  EXPECT_EQ(t.decode(ids), "<bos>Q:1 +2?\n");
  EXPECT_EQ(t.encode_chat({{"system", "be nice"}, {"user", "Q:1 +2?"}}), ids);
  EXPECT_THROW(t.encode_chat({{"system", "only a system prompt"}}), Error);
}

TEST(TokenizerTest, RejectsCharactersOutsideTheAlphabet) {
  CharTokenizer t;
  EXPECT_THROW(t.encode("caf\xc3\xa9"), Error);
  EXPECT_FALSE(t.can_encode("tab\there"));
  EXPECT_TRUE(t.can_encode("plain text 123"));
  EXPECT_THROW(t.decode({100}), Error);
  EXPECT_THROW(t.decode({-1}), Error);
}

TEST(TokenizerTest, JsonRoundTripAndCorruptFiles) {
  CharTokenizer t;
  const auto dir = std::filesystem::temp_directory_path() / "handoff_tok_test";
  std::filesystem::create_directories(dir);
  write_file_atomic((dir / "tokenizer.json").string(), t.to_json());
  auto loaded = load_tokenizer(dir.string());
  EXPECT_EQ(loaded->vocab_size(), 100);
  EXPECT_EQ(loaded->encode("a<handoff>"), t.encode("a<handoff>"));
  write_file_atomic((dir / "tokenizer.json").string(), "{not json");
  EXPECT_THROW(load_tokenizer(dir.string()), Error);
  auto j = nlohmann::json::parse(t.to_json());
  j["model"]["vocab"]["a"] = 7;
  write_file_atomic((dir / "tokenizer.json").string(), j.dump());
  try {
    load_tokenizer(dir.string());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("token 'a'"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
  EXPECT_THROW(load_tokenizer(dir.string()), Error);
}
