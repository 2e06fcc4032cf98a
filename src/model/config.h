#pragma once
// Model configuration with Hugging Face field names, so config.json of Llama/Qwen2/Qwen3 checkpoints loads as
// is.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace handoff {

struct RopeScaling {  // Llama-3 style ("rope_type": "llama3"); type empty = none
  std::string type;
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type = "llama";  // "llama" | "qwen2" | "qwen3"
  int64_t vocab_size = 100;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 176;
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;
  int64_t max_position_embeddings = 256;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = true;
  bool attention_bias = false;  // q/k/v bias (Qwen2 always has it)
  RopeScaling rope_scaling;
  int64_t bos_token_id = 1, eos_token_id = 2, pad_token_id = 0;
  // config.json "head_dim" when given (Qwen3: 128 with hidden 1024 and 16 heads); 0 = hidden / heads.
  int64_t explicit_head_dim = 0;

  int64_t head_dim() const {
    return explicit_head_dim > 0 ? explicit_head_dim : hidden_size / num_attention_heads;
  }
  bool has_qkv_bias() const { return attention_bias || model_type == "qwen2"; }
  // Qwen3: an RMSNorm over each head's query and key (q_norm, k_norm), before RoPE.
  bool has_qk_norm() const { return model_type == "qwen3"; }
  int64_t num_parameters() const;                  // analytic count, tested against the module
  void validate(const std::string& source) const;  // throws Error naming `source`

  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace handoff
