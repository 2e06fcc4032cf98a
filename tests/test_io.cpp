// safetensors and checkpoints: round trips, dtype conversion, and a clear error for each corruption.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::TempDir;
namespace fs = std::filesystem;

namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  return c;
}

}  // namespace

TEST(SafetensorsTest, RoundTripKeepsValuesAndConvertsHalfTypes) {
  TempDir d("st_roundtrip");
  auto a = torch::randn({3, 5});
  auto b = torch::randn({7});
  write_safetensors(d.str("x.safetensors"),
                    {{"a", a}, {"b.half", b.to(at::kHalf)}, {"b.bf16", b.to(at::kBFloat16)}},
                    {{"format", "pt"}});
  SafetensorsFile f(d.str("x.safetensors"));
  EXPECT_EQ(f.entries().size(), 3u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_TRUE(f.tensor("a").equal(a));
  EXPECT_LT((f.tensor("b.half") - b).abs().max().item<double>(), 1e-2);
  EXPECT_LT((f.tensor("b.bf16") - b).abs().max().item<double>(), 5e-2);
  EXPECT_EQ(f.entries().at("b.bf16").dtype, "BF16");
  EXPECT_FALSE(fs::exists(d.str("x.safetensors.tmp")));
}

TEST(SafetensorsTest, EachCorruptionGivesAClearError) {
  TempDir d("st_corrupt");
  write_safetensors(d.str("ok.safetensors"), {{"w", torch::randn({4, 4})}});
  const std::string good = read_file(d.str("ok.safetensors"));
  auto write = [&](const std::string& name, const std::string& bytes) {
    write_file_atomic(d.str(name), bytes);
    return d.str(name);
  };
  // Truncated data section.
  auto p = write("trunc.safetensors", good.substr(0, good.size() - 10));
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("trunc.safetensors"), std::string::npos);
  // Fewer than 8 bytes.
  p = write("tiny.safetensors", "abc");
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("truncated"), std::string::npos);
  // Header length beyond the file.
  std::string bad_len = good;
  bad_len[5] = 0x7f;
  p = write("badlen.safetensors", bad_len);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("header length"), std::string::npos);
  // Header not JSON.
  std::string bad_json = good;
  bad_json[8] = '#';
  p = write("badjson.safetensors", bad_json);
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("not valid JSON"), std::string::npos);
  // Unknown dtype and inconsistent byte counts.
  auto with_header = [&](const std::string& header, size_t data_bytes) {
    std::string out;
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
    return out + header + std::string(data_bytes, '\0');
  };
  p = write("dtype.safetensors", with_header(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", 2));
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("unsupported dtype Q4"), std::string::npos);
  p = write("shape.safetensors", with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  EXPECT_NE(error_of([&] { SafetensorsFile f(p); }).find("do not match shape"), std::string::npos);
  p = write("ints.safetensors", with_header(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8));
  SafetensorsFile ints(p);
  EXPECT_NE(error_of([&] { ints.tensor("w"); }).find("must be F32"), std::string::npos);
  EXPECT_NE(error_of([&] { ints.tensor("nope"); }).find("nope missing"), std::string::npos);
  EXPECT_NE(error_of([&] { SafetensorsFile f(d.str("absent.safetensors")); }).find("cannot open"),
            std::string::npos);
}

TEST(CheckpointTest, RoundTripGivesIdenticalLogits) {
  TempDir d("ckpt_roundtrip");
  torch::manual_seed(0);
  CausalLM m(small_config());
  CharTokenizer tok;
  save_checkpoint(d.str("model"), m, tok, {{"trainer_state.json", "{\"step\": 3}"}});
  EXPECT_TRUE(fs::exists(d.str("model/config.json")));
  EXPECT_TRUE(fs::exists(d.str("model/trainer_state.json")));
  EXPECT_FALSE(fs::exists(d.str("model.tmp")));
  auto loaded = load_checkpoint(d.str("model"));
  auto ids = torch::randint(4, 100, {2, 9}, at::kLong);
  auto pos = at::arange(9, at::kLong).unsqueeze(0).expand({2, 9});
  torch::NoGradGuard ng;
  m->eval();
  EXPECT_TRUE(m->forward(ids, pos).equal(loaded.model->forward(ids, pos)));
  EXPECT_EQ(loaded.tokenizer->vocab_size(), 100);
  // Saving again replaces the old checkpoint atomically.
  save_checkpoint(d.str("model"), m, tok);
  EXPECT_FALSE(fs::exists(d.str("model/trainer_state.json")));
  EXPECT_FALSE(fs::exists(d.str("model.old")));
}

TEST(CheckpointTest, MissingTensorShapeMismatchAndMissingFilesAreClearErrors) {
  TempDir d("ckpt_errors");
  torch::manual_seed(0);
  CausalLM m(small_config());
  CharTokenizer tok;
  save_checkpoint(d.str("m"), m, tok);
  // Missing tensor: rewrite the weights without one layer's up_proj.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& p : m->named_parameters())
    if (p.key() != "model.layers.1.mlp.up_proj.weight") tensors.emplace_back(p.key(), p.value());
  write_safetensors(d.str("m/model.safetensors"), tensors);
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << msg;
  // Shape mismatch: config says a bigger MLP than the weights have.
  save_checkpoint(d.str("m"), m, tok);
  auto cfg = small_config();
  cfg.intermediate_size = 64;
  write_file_atomic(d.str("m/config.json"), cfg.to_json().dump());
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("has shape"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mlp"), std::string::npos) << msg;
  // Unknown architecture and bad JSON.
  auto j = small_config().to_json();
  j["model_type"] = "gpt2";
  write_file_atomic(d.str("m/config.json"), j.dump());
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("gpt2"), std::string::npos);
  // A llama checkpoint relabelled qwen3 lacks the q_norm/k_norm tensors: named, not loaded half-way.
  j = small_config().to_json();
  j["model_type"] = "qwen3";
  write_file_atomic(d.str("m/config.json"), j.dump());
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("self_attn.q_norm.weight"),
            std::string::npos);
  j["use_sliding_window"] = true;
  write_file_atomic(d.str("m/config.json"), j.dump());
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("sliding-window"), std::string::npos);
  j = small_config().to_json();
  j["head_dim"] = -4;
  write_file_atomic(d.str("m/config.json"), j.dump());
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("head_dim"), std::string::npos);
  write_file_atomic(d.str("m/config.json"), "{");
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("not valid JSON"), std::string::npos);
  // Missing weights file and missing directory.
  save_checkpoint(d.str("m"), m, tok);
  fs::remove(d.str("m/model.safetensors"));
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("no model.safetensors"), std::string::npos);
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("nowhere")); }).find("does not exist"), std::string::npos);
}

// Bad files (issue 16): absurd sizes are refused before any allocation, non-finite weights name their
// tensor, a tokenizer.json with wrong JSON types names the file.
TEST(CheckpointTest, AbsurdConfigNonFiniteWeightsAndMistypedTokenizerAreNamed) {
  TempDir d("ckpt_bad_files");
  torch::manual_seed(0);
  CausalLM m(small_config());
  CharTokenizer tok;
  save_checkpoint(d.str("m"), m, tok);
  // 100000 layers would be ~80 GB for the 0.5B shape; here the weight files hold 2 layers' worth.
  auto j = small_config().to_json();
  j["num_hidden_layers"] = 1000;
  write_file_atomic(d.str("m/config.json"), j.dump());
  auto msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("config.json describes a model of"), std::string::npos) << msg;
  j["num_hidden_layers"] = 100000;
  write_file_atomic(d.str("m/config.json"), j.dump());
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("num_hidden_layers <= 4096"), std::string::npos) << msg;
  j = small_config().to_json();
  j["vocab_size"] = 1000000000;
  write_file_atomic(d.str("m/config.json"), j.dump());
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("vocab_size <= 2097152"), std::string::npos) << msg;
  // A NaN in one tensor.
  save_checkpoint(d.str("m"), m, tok);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& p : m->named_parameters()) {
    at::Tensor t = p.value().detach().clone();
    if (p.key() == "model.layers.0.self_attn.k_proj.weight") t[0][0] = std::nan("");
    tensors.emplace_back(p.key(), t);
  }
  write_safetensors(d.str("m/model.safetensors"), tensors);
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("model.layers.0.self_attn.k_proj.weight holds NaN or Inf"), std::string::npos) << msg;
  // tokenizer.json whose "handoff" section is a number, and one whose model.vocab is a list.
  save_checkpoint(d.str("m"), m, tok);
  write_file_atomic(d.str("m/tokenizer.json"), R"({"handoff": 5, "model": {"type": "BPE", "vocab": [1]}})");
  msg = error_of([&] { load_checkpoint(d.str("m")); });
  EXPECT_NE(msg.find("tokenizer.json"), std::string::npos) << msg;
}

TEST(CheckpointTest, ShardedCheckpointLoadsAndMissingShardIsNamed) {
  TempDir d("ckpt_sharded");
  torch::manual_seed(0);
  CausalLM m(small_config());
  CharTokenizer tok;
  save_checkpoint(d.str("m"), m, tok);
  fs::remove(d.str("m/model.safetensors"));
  std::vector<std::pair<std::string, at::Tensor>> s1, s2;
  nlohmann::json map = nlohmann::json::object();
  int i = 0;
  for (auto& p : m->named_parameters()) {
    const bool first = (i++ % 2) == 0;
    (first ? s1 : s2).emplace_back(p.key(), p.value().to(at::kBFloat16));
    map[p.key()] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_safetensors(d.str("m/model-00001-of-00002.safetensors"), s1);
  write_safetensors(d.str("m/model-00002-of-00002.safetensors"), s2);
  write_file_atomic(d.str("m/model.safetensors.index.json"), nlohmann::json({{"weight_map", map}}).dump());
  auto loaded = load_checkpoint(d.str("m"));
  auto w = loaded.model->model->layers[0]->as<DecoderLayer>()->mlp->up_proj->weight;
  auto ref = m->model->layers[0]->as<DecoderLayer>()->mlp->up_proj->weight;
  EXPECT_LT((w - ref).abs().max().item<double>(), 2e-2);  // bf16 on disk
  fs::remove(d.str("m/model-00002-of-00002.safetensors"));
  EXPECT_NE(error_of([&] { load_checkpoint(d.str("m")); }).find("model-00002-of-00002"), std::string::npos);
}
