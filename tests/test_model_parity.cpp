// Parity of our decoder with the Hugging Face modelling equations: a tiny random Qwen2-, Qwen3- and
// Llama-shaped checkpoint is written in HF layout, run through load_checkpoint + forward, and through an
// independent float64 implementation in Python (tests/py/reference_forward.py, Debian's python3-torch, which
// scripts/setup.sh installs: without it these tests fail); logits must agree to 1e-4.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
using handoff::testing::TempDir;
namespace fs = std::filesystem;

namespace {

const char* kPython = "/usr/bin/python3";

// Runs a shell command and returns its stdout and exit status.
std::pair<std::string, int> run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {"", -1};
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  return {out, ::pclose(p)};
}

::testing::AssertionResult python_torch_installed() {
  return handoff::testing::reference_installed(
      run(std::string(kPython) + " -c 'import torch' 2>/dev/null").second == 0,
      std::string(kPython) + " with torch (Debian python3-torch)", "apt-get install python3-torch");
}

// Every parameter random (norm weights around 1, biases non-zero), scaled so attention is far from uniform
// and every term of the forward pass shows in the logits.
void randomize(CausalLM& m) {
  torch::NoGradGuard ng;
  for (auto& p : m->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("norm") != std::string::npos) {
      p.value().copy_(1.0 + 0.2 * torch::randn(p.value().sizes()));
    } else if (name.find("bias") != std::string::npos) {
      p.value().copy_(0.3 * torch::randn(p.value().sizes()));
    } else if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos) {
      p.value().copy_(0.25 * torch::randn(p.value().sizes()));
    } else {
      p.value().copy_(0.1 * torch::randn(p.value().sizes()));
    }
  }
}

// Writes `m` as an HF checkpoint; with bf16, the weights on disk are bfloat16 (as real checkpoints ship).
void write_checkpoint(const std::string& dir, CausalLM& m, bool bf16) {
  save_checkpoint(dir, m, CharTokenizer());
  if (!bf16) return;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : m->named_parameters()) tensors.emplace_back(p.key(), p.value().to(at::kBFloat16));
  write_safetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}});
  auto cfg = m->config.to_json();
  cfg["torch_dtype"] = "bfloat16";
  write_file_atomic(dir + "/config.json", cfg.dump(2));
}

at::Tensor reference_logits(const std::string& dir, const std::vector<int64_t>& ids) {
  std::string cmd = std::string(kPython) + " " + HANDOFF_SOURCE_DIR + "/tests/py/reference_forward.py " + dir;
  for (auto id : ids) cmd += " " + std::to_string(id);
  auto [out, status] = run(cmd);
  EXPECT_EQ(status, 0) << cmd;
  auto rows = nlohmann::json::parse(out).at("logits").get<std::vector<std::vector<double>>>();
  auto t =
      torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.at(0).size())}, at::kDouble);
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) t[i][j] = rows[i][j];
  return t.to(at::kFloat);
}

// Full-sequence forward and prefill + one-token-at-a-time decoding with the KV cache, both against Python.
void expect_parity(const std::string& dir) {
  const std::vector<int64_t> ids = {1, 17, 42, 5, 99, 23, 23, 8, 64, 31, 77, 12, 3, 56, 40, 9, 88, 70, 2, 33};
  const int64_t T = static_cast<int64_t>(ids.size());
  auto ref = reference_logits(dir, ids);
  auto loaded = load_checkpoint(dir);
  auto& m = loaded.model;
  c10::InferenceMode im;
  auto input = torch::tensor(ids, at::kLong).unsqueeze(0);
  auto pos = at::arange(T, at::kLong).unsqueeze(0);
  auto full = m->forward(input, pos)[0];
  ASSERT_EQ(full.sizes(), ref.sizes());
  EXPECT_GT(ref.abs().max().item<double>(), 0.5) << "logits too small for the comparison to mean anything";
  const double diff = (full - ref).abs().max().item<double>();
  EXPECT_LE(diff, 1e-4) << dir << ": full forward vs reference";

  auto cache = m->make_cache(1, T);
  const int64_t prefill = 7;
  std::vector<at::Tensor> steps = {
      m->forward(input.narrow(1, 0, prefill), pos.narrow(1, 0, prefill), {}, &cache)};
  for (int64_t t = prefill; t < T; ++t)
    steps.push_back(m->forward(input.narrow(1, t, 1), pos.narrow(1, t, 1), {}, &cache));
  auto cached = at::cat(steps, 1)[0];
  EXPECT_LE((cached - ref).abs().max().item<double>(), 1e-4) << dir << ": KV-cache decoding vs reference";
}

}  // namespace

TEST(ModelParityTest, Qwen2ShapedMatchesHuggingFaceEquations) {
  ASSERT_TRUE(python_torch_installed());
  torch::set_num_threads(1);
  ModelConfig c;
  c.model_type = "qwen2";  // q/k/v bias
  c.vocab_size = 112;      // larger than the tokenizer's 100, as in real Qwen2 checkpoints
  c.hidden_size = 64;
  c.intermediate_size = 160;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;  // GQA
  c.max_position_embeddings = 64;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  torch::manual_seed(11);
  CausalLM m(c);
  randomize(m);
  TempDir d("parity_qwen2");
  write_checkpoint(d.str("m"), m, /*bf16=*/false);
  expect_parity(d.str("m"));
}

TEST(ModelParityTest, LlamaShapedWithLlama3RopeAndBf16WeightsMatchesHuggingFaceEquations) {
  ASSERT_TRUE(python_torch_installed());
  torch::set_num_threads(1);
  ModelConfig c;
  c.model_type = "llama";  // no bias
  c.vocab_size = 100;
  c.hidden_size = 64;
  c.intermediate_size = 176;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 1;  // multi-query: the extreme of GQA
  c.max_position_embeddings = 128;
  c.rope_theta = 500000.0;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;  // separate lm_head
  // head_dim 16 → wavelengths 6.3, 32, 167, …: with an original context of 64 (low 1, high 4) the first is
  // kept, the second is smoothly interpolated and the rest are divided by the factor, so each llama3 branch
  // is used.
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 64;
  torch::manual_seed(12);
  CausalLM m(c);
  randomize(m);
  TempDir d("parity_llama");
  write_checkpoint(d.str("m"), m, /*bf16=*/true);
  expect_parity(d.str("m"));
}

TEST(ModelParityTest, Qwen3ShapedWithQkNormAndItsOwnHeadDimMatchesHuggingFaceEquations) {
  ASSERT_TRUE(python_torch_installed());
  torch::set_num_threads(1);
  ModelConfig c;
  c.model_type = "qwen3";  // per-head q/k RMSNorm, no q/k/v bias
  c.vocab_size = 100;
  c.hidden_size = 48;
  c.explicit_head_dim = 32;  // heads · head_dim = 128 ≠ hidden_size, as in Qwen3-0.6B (16 · 128 vs 1024)
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 64;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  torch::manual_seed(13);
  CausalLM m(c);
  randomize(m);  // q_norm/k_norm weights around 1, like every norm
  ASSERT_EQ(m->named_parameters().size(), 2u + 2u * 11u);
  EXPECT_EQ(c.num_parameters(), [&] {
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    return n;
  }());
  TempDir d("parity_qwen3");
  write_checkpoint(d.str("m"), m, /*bf16=*/true);
  const auto saved = nlohmann::json::parse(read_file(d.str("m") + "/config.json"));
  EXPECT_EQ(saved.at("architectures")[0], "Qwen3ForCausalLM");
  EXPECT_EQ(saved.at("head_dim"), 32);
  expect_parity(d.str("m"));
}
