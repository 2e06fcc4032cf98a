// Real-checkpoint concerns: the loader's errors on the ways a downloaded checkpoint goes wrong (each names
// the file or tensor), and adding the hand-off token to a checkpoint whose tokenizer lacks it. (test_io.cpp
// already covers: safetensors corruptions in isolation, a missing tensor, a shape mismatch, an unknown
// model_type, bad config JSON, a missing weights file, a missing shard.)
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "cloud/local_model_responder.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "io/add_special_token.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig config(bool tied) {
  ModelConfig c;
  c.model_type = tied ? "qwen2" : "llama";
  c.vocab_size = 100;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.tie_word_embeddings = tied;
  return c;
}

std::vector<std::pair<std::string, at::Tensor>> params_of(CausalLM& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& p : m->named_parameters()) out.emplace_back(p.key(), p.value());
  return out;
}

// safetensors bytes with a hand-written header over `data_bytes` zero bytes.
std::string with_header(const std::string& header, size_t data_bytes) {
  std::string out;
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + std::string(data_bytes, '\0');
}

}  // namespace

// ---- loader errors ----

TEST(RealCheckpointErrorsTest, TruncatedWeightsFileInACheckpointNamesTheFile) {
  torch::set_num_threads(1);
  TempDir d("rc_trunc");
  torch::manual_seed(0);
  CausalLM m(config(true));
  save_checkpoint(d.str("m"), m, CharTokenizer());
  const std::string path = d.str("m/model.safetensors");
  const std::string bytes = read_file(path);
  write_file_atomic(path, bytes.substr(0, bytes.size() / 2));  // an interrupted download
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(RealCheckpointErrorsTest, HeaderOffsetsOutsideTheDataOrReversedNameTheTensor) {
  TempDir d("rc_offsets");
  const std::string p = d.str("x.safetensors");
  write_file_atomic(
      p, with_header(R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", 16));
  auto msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside the data section"), std::string::npos) << msg;
  write_file_atomic(
      p, with_header(R"({"model.norm.weight":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}})", 16));
  msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  // A shape whose element count overflows must not wrap around to a matching byte count.
  write_file_atomic(
      p,
      with_header(
          R"({"w":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,4],"data_offsets":[0,0]}})",
          0));
  msg = error_of([&] { SafetensorsFile f(p); });
  EXPECT_NE(msg.find("tensor w"), std::string::npos) << msg;
  write_file_atomic(p, with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8));
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("two entries"), std::string::npos);
}

TEST(RealCheckpointErrorsTest, ShardIndexErrorsNameTheIndexAndShard) {
  torch::set_num_threads(1);
  TempDir d("rc_shards");
  torch::manual_seed(0);
  CausalLM m(config(false));
  save_checkpoint(d.str("m"), m, CharTokenizer());
  fs::remove(d.str("m/model.safetensors"));
  auto params = params_of(m);
  nlohmann::json map = nlohmann::json::object();
  for (const auto& [name, t] : params) map[name] = "model-00001-of-00002.safetensors";
  map["lm_head.weight"] = "model-00002-of-00002.safetensors";
  write_safetensors(d.str("m/model-00001-of-00002.safetensors"), params);
  const std::string index = d.str("m/model.safetensors.index.json");
  write_file_atomic(index, nlohmann::json({{"weight_map", map}}).dump());
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find(index), std::string::npos) << msg;
  EXPECT_NE(msg.find("model-00002-of-00002.safetensors"), std::string::npos) << msg;
  // A weight_map value that is not a file name is an Error, not a JSON exception.
  map["lm_head.weight"] = 7;
  write_file_atomic(index, nlohmann::json({{"weight_map", map}}).dump());
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("lm_head.weight"), std::string::npos) << msg;
}

TEST(RealCheckpointErrorsTest, EmbeddingRowsDifferentFromVocabSizeNameTensorAndConfig) {
  torch::set_num_threads(1);
  TempDir d("rc_rows");
  torch::manual_seed(0);
  auto big = config(true);
  big.vocab_size = 120;
  CausalLM m(big);
  save_checkpoint(d.str("m"), m, CharTokenizer());
  write_file_atomic(d.str("m/config.json"), config(true).to_json().dump());  // says 100
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("model.embed_tokens.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("120 rows"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size 100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(RealCheckpointErrorsTest, TokenizerLargerThanTheEmbeddingIsAnError) {
  torch::set_num_threads(1);
  TempDir d("rc_tok");
  torch::manual_seed(0);
  auto small = config(true);
  small.vocab_size = 90;  // the char tokenizer has 100 tokens
  CausalLM m(small);
  save_checkpoint(d.str("m"), m, CharTokenizer());
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("tokenizer.json has 100 tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find("90 rows"), std::string::npos) << msg;
}

TEST(RealCheckpointErrorsTest, UnknownModelTypeNamesConfigAndTheKnownTypes) {
  torch::set_num_threads(1);
  TempDir d("rc_type");
  torch::manual_seed(0);
  CausalLM m(config(true));
  save_checkpoint(d.str("m"), m, CharTokenizer());
  auto j = config(true).to_json();
  j["model_type"] = "mistral";
  write_file_atomic(d.str("m/config.json"), j.dump());
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find(d.str("m/config.json")), std::string::npos) << msg;
  EXPECT_NE(msg.find("mistral"), std::string::npos) << msg;
  EXPECT_NE(msg.find("llama, qwen2"), std::string::npos) << msg;
}

TEST(RealCheckpointErrorsTest, AbsentTieWordEmbeddingsMeansUntiedAsInTransformers) {
  auto j = config(true).to_json();  // qwen2
  j.erase("tie_word_embeddings");
  EXPECT_FALSE(ModelConfig::from_json(j, "config.json").tie_word_embeddings);
  j["tie_word_embeddings"] = true;
  EXPECT_TRUE(ModelConfig::from_json(j, "config.json").tie_word_embeddings);
}

// ---- adding the hand-off token ----

namespace {

// A minimal byte-level-BPE-style tokenizer.json (as real Qwen2/Llama checkpoints ship) without <handoff>:
// 97 vocabulary entries (the printable ASCII bytes, the space byte "Ġ" and two merges) plus <|endoftext|> as
// an added special token. Bytes outside that alphabet cannot be encoded, which these tests never ask for.
nlohmann::json bpe_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  for (int i = 0; i < 94; ++i) vocab[std::string(1, static_cast<char>('!' + i))] = i;
  vocab["Ġ"] = 94;
  vocab["Ġt"] = 95;
  vocab["Ġth"] = 96;
  return {{"version", "1.0"},
          {"added_tokens",
           {{{"id", 97},
             {"content", "<|endoftext|>"},
             {"single_word", false},
             {"lstrip", false},
             {"rstrip", false},
             {"normalized", false},
             {"special", true}}}},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"byte_fallback", false},
            {"vocab", vocab},
            {"merges", {"Ġ t", "Ġt h"}}}}};
}

// A checkpoint with that tokenizer, random weights (bf16 on disk when asked) and the extra files HF ships.
CausalLM write_bpe_checkpoint(const std::string& dir, bool tied, bool bf16) {
  torch::manual_seed(tied ? 21 : 22);
  CausalLM m(config(tied));
  {
    torch::NoGradGuard ng;
    for (auto& p : m->named_parameters())
      if (p.value().dim() == 2) p.value().normal_(0.0, 0.1);
    if (bf16)  // the in-memory reference holds exactly what the file holds
      for (auto& p : m->named_parameters()) p.value().copy_(p.value().to(at::kBFloat16).to(at::kFloat));
  }
  make_dirs(dir);
  auto params = params_of(m);
  if (bf16)
    for (auto& [name, t] : params) t = t.to(at::kBFloat16);
  write_safetensors(dir + "/model.safetensors", params, {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", m->config.to_json().dump(2));
  write_file_atomic(dir + "/tokenizer.json", bpe_tokenizer_json().dump(2));
  write_file_atomic(dir + "/tokenizer_config.json",
                    R"({"added_tokens_decoder": {"97": {"content": "<|endoftext|>", "special": true}},)"
                    R"( "eos_token": "<|endoftext|>"})");
  write_file_atomic(dir + "/generation_config.json", R"({"do_sample": false})");
  return m;
}

// config.json + weights of a checkpoint into a CausalLM (the tokenizer is checked separately).
CausalLM load_model_only(const std::string& dir) {
  auto cfg = ModelConfig::from_json(nlohmann::json::parse(read_file(dir + "/config.json")), dir);
  CausalLM m(cfg);
  load_weights(m, dir);
  m->eval();
  return m;
}

void check_added_token(bool tied, bool bf16) {
  torch::set_num_threads(1);
  TempDir d(std::string("rc_add_") + (tied ? "tied" : "untied") + (bf16 ? "_bf16" : ""));
  CausalLM before = write_bpe_checkpoint(d.str("in"), tied, bf16);
  const AddedToken a = add_special_token(d.str("in"), d.str("out"));
  EXPECT_EQ(a.token, "<handoff>");
  EXPECT_EQ(a.id, 100);
  EXPECT_EQ(a.new_vocab_size, 101);
  EXPECT_EQ(a.resized_lm_head, !tied);
  EXPECT_FALSE(fs::exists(d.str("out.tmp")));

  // tokenizer.json: appended as a special added token, everything else untouched.
  auto tok = nlohmann::json::parse(read_file(d.str("out/tokenizer.json")));
  ASSERT_EQ(tok["added_tokens"].size(), 2u);
  EXPECT_EQ(tok["added_tokens"][1]["content"], "<handoff>");
  EXPECT_EQ(tok["added_tokens"][1]["id"], 100);
  EXPECT_EQ(tok["added_tokens"][1]["special"], true);
  EXPECT_EQ(tok["model"], bpe_tokenizer_json()["model"]);
  auto tc = nlohmann::json::parse(read_file(d.str("out/tokenizer_config.json")));
  EXPECT_EQ(tc["added_tokens_decoder"]["100"]["content"], "<handoff>");
  EXPECT_EQ(tc["eos_token"], "<|endoftext|>");
  EXPECT_TRUE(fs::exists(d.str("out/generation_config.json")));
  auto cfg = nlohmann::json::parse(read_file(d.str("out/config.json")));
  EXPECT_EQ(cfg["vocab_size"], 101);
  EXPECT_EQ(cfg["model_type"], tied ? "qwen2" : "llama");

  // Weights: same dtype on disk, one more row equal to the mean of the old rows, old rows unchanged.
  SafetensorsFile st(d.str("out/model.safetensors"));
  EXPECT_EQ(st.entries().at("model.embed_tokens.weight").dtype, bf16 ? "BF16" : "F32");
  EXPECT_EQ(st.has("lm_head.weight"), !tied);
  CausalLM after = load_model_only(d.str("out"));
  EXPECT_EQ(after->config.vocab_size, 101);
  auto check_rows = [&](const at::Tensor& old_w, const at::Tensor& new_w) {
    ASSERT_EQ(new_w.size(0), 101);
    EXPECT_TRUE(new_w.narrow(0, 0, 100).equal(old_w));
    auto mean = old_w.to(at::kDouble).mean(0).to(bf16 ? at::kBFloat16 : at::kFloat).to(at::kFloat);
    EXPECT_TRUE(new_w[100].equal(mean));
  };
  check_rows(before->model->embed_tokens->weight, after->model->embed_tokens->weight);
  if (!tied) check_rows(before->lm_head->weight, after->lm_head->weight);

  // Old tokens' logits are unchanged; the new token gets a logit column of its own.
  c10::InferenceMode im;
  before->eval();
  auto ids = torch::tensor(std::vector<int64_t>{96, 5, 17, 94, 95, 60, 3}, at::kLong).unsqueeze(0);
  auto pos = at::arange(ids.size(1), at::kLong).unsqueeze(0);
  auto old_logits = before->forward(ids, pos);
  auto new_logits = after->forward(ids, pos);
  EXPECT_EQ(new_logits.size(-1), 101);
  EXPECT_LE((new_logits.narrow(-1, 0, 100) - old_logits).abs().max().item<double>(), 1e-6);
  // The new token is usable as input.
  auto with_new = torch::tensor(std::vector<int64_t>{5, 100}, at::kLong).unsqueeze(0);
  EXPECT_TRUE(after->forward(with_new, at::arange(2, at::kLong).unsqueeze(0)).isfinite().all().item<bool>());

  // The whole checkpoint loads with its byte-level BPE tokenizer, and the new token is one id in text.
  auto loaded = load_checkpoint(d.str("out"));
  EXPECT_EQ(loaded.tokenizer->handoff_id(), 100);
  EXPECT_EQ(loaded.tokenizer->bos_id(), -1);
  EXPECT_EQ(loaded.tokenizer->encode("<handoff>"), std::vector<int>{100});
  EXPECT_EQ(loaded.tokenizer->encode("a th<handoff>"), (std::vector<int>{'a' - '!', 96, 100}));
  EXPECT_EQ(loaded.model->config.vocab_size, 101);

  // Saving it again (as SFT and RL checkpoints do) keeps tokenizer_config.json: the chat template and the
  // special-token names survive training.
  save_checkpoint(d.str("resaved"), loaded.model, *loaded.tokenizer);
  ASSERT_TRUE(fs::exists(d.str("resaved/tokenizer_config.json")));
  EXPECT_EQ(nlohmann::json::parse(read_file(d.str("resaved/tokenizer_config.json"))),
            nlohmann::json::parse(read_file(d.str("out/tokenizer_config.json"))));
  EXPECT_EQ(load_checkpoint(d.str("resaved")).tokenizer->handoff_id(), 100);

  // A raw text completion on a tokenizer without BOS (Qwen2's) starts at the text: no -1 id in the prompt.
  LocalModelResponder responder(std::move(loaded), "bpe");
  CompletionRequest req;
  req.prompt = "a th";
  req.params.max_tokens = 2;
  req.params.temperature = 0.0;
  const GenerationResult r = responder.respond(req);
  EXPECT_EQ(r.prompt_tokens, 2);
  ASSERT_EQ(r.choices.size(), 1u);
}

}  // namespace

TEST(AddSpecialTokenTest, TiedQwen2StyleCheckpointGrowsByOneMeanRow) {
  check_added_token(/*tied=*/true, /*bf16=*/false);
}

TEST(AddSpecialTokenTest, UntiedLlamaStyleBf16CheckpointGrowsEmbeddingAndHeadAndStaysBf16) {
  check_added_token(/*tied=*/false, /*bf16=*/true);
}

TEST(AddSpecialTokenTest, ErrorsSayWhatIsWrong) {
  torch::set_num_threads(1);
  TempDir d("rc_add_errors");
  // Already present: our char tokenizer has <handoff> (id 3).
  torch::manual_seed(0);
  CausalLM m(config(true));
  save_checkpoint(d.str("char"), m, CharTokenizer());
  auto msg = error_of([&] { add_special_token(d.str("char"), d.str("char2")); });
  EXPECT_NE(msg.find("already has the token <handoff> (id 3)"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(d.str("char2")));
  // A missing input directory, an existing output, output = input.
  msg = error_of([&] { add_special_token(d.str("nowhere"), d.str("x")); });
  EXPECT_NE(msg.find("nowhere does not exist"), std::string::npos) << msg;
  write_bpe_checkpoint(d.str("bpe"), true, false);
  msg = error_of([&] { add_special_token(d.str("bpe"), d.str("char")); });
  EXPECT_NE(msg.find("already exists"), std::string::npos) << msg;
  msg = error_of([&] { add_special_token(d.str("bpe"), d.str("bpe")); });
  EXPECT_NE(msg.find("is the input"), std::string::npos) << msg;
  // An existing vocabulary entry counts as present too, and another token text can be added.
  msg = error_of([&] { add_special_token(d.str("bpe"), d.str("o1"), "Ġth"); });
  EXPECT_NE(msg.find("already has the token Ġth (id 96)"), std::string::npos) << msg;
  EXPECT_EQ(add_special_token(d.str("bpe"), d.str("o2"), "<tool>").id, 100);
  // Adding twice: the second time the token is there.
  msg = error_of([&] { add_special_token(d.str("o2"), d.str("o3"), "<tool>"); });
  EXPECT_NE(msg.find("already has the token <tool> (id 100)"), std::string::npos) << msg;
  EXPECT_EQ(add_special_token(d.str("o2"), d.str("o4")).id, 101);
  // Weights that disagree with config.json.
  auto j = nlohmann::json::parse(read_file(d.str("bpe/config.json")));
  j["vocab_size"] = 128;
  write_file_atomic(d.str("bpe/config.json"), j.dump());
  msg = error_of([&] { add_special_token(d.str("bpe"), d.str("o5")); });
  EXPECT_NE(msg.find("model.embed_tokens.weight has 100 rows"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(d.str("o5")));
  EXPECT_FALSE(fs::exists(d.str("o5.tmp")));
}

TEST(AddSpecialTokenTest, CliAddsTheTokenAndReportsErrors) {
  TempDir d("rc_add_cli");
  write_bpe_checkpoint(d.str("in"), false, true);
  auto r = handoff::testing::run_cli("add-token --model " + d.str("in") + " --out " + d.str("out"));
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("added <handoff> as id 100: vocab_size 100 -> 101"), std::string::npos) << r.output;
  EXPECT_EQ(nlohmann::json::parse(read_file(d.str("out/config.json")))["vocab_size"], 101);
  // Again on the output: the token is there now.
  r = handoff::testing::run_cli("add-token --model " + d.str("out") + " --out " + d.str("out2"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("already has the token <handoff>"), std::string::npos) << r.output;
  r = handoff::testing::run_cli("add-token --model " + d.str("missing") + " --out " + d.str("out3"));
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_NE(r.output.find("does not exist"), std::string::npos) << r.output;
}
