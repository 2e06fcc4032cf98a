#include "model/config.h"

#include "common/error.h"

namespace handoff {

int64_t ModelConfig::num_parameters() const {
  const int64_t d = hidden_size, hd = head_dim();
  const int64_t q = num_attention_heads * hd, kv = num_key_value_heads * hd;
  int64_t attn = d * q + 2 * d * kv + q * d + (has_qkv_bias() ? q + 2 * kv : 0);
  int64_t mlp = 3 * d * intermediate_size;
  int64_t per_layer = attn + mlp + 2 * d + (has_qk_norm() ? 2 * hd : 0);
  int64_t total = vocab_size * d + num_hidden_layers * per_layer + d;
  if (!tie_word_embeddings) total += vocab_size * d;
  return total;
}

void ModelConfig::validate(const std::string& source) const {
  auto bad = [&](const std::string& what) { throw Error(source + ": invalid model config: " + what); };
  if (model_type != "llama" && model_type != "qwen2" && model_type != "qwen3")
    bad("model_type '" + model_type + "' is not supported (known: llama, qwen2, qwen3)");
  if (vocab_size <= 0 || hidden_size <= 0 || intermediate_size <= 0 || num_hidden_layers <= 0)
    bad("sizes must be positive");
  // Caps far above any real model, so that a typo is an error naming the file rather than a many-GB
  // allocation (and so that num_parameters() cannot overflow).
  if (vocab_size > (int64_t{1} << 21) || hidden_size > (int64_t{1} << 17) ||
      intermediate_size > (int64_t{1} << 20) || num_hidden_layers > 4096)
    bad("a size is beyond any supported model (vocab_size <= 2097152, hidden_size <= 131072, "
        "intermediate_size <= 1048576, num_hidden_layers <= 4096)");
  if (max_position_embeddings > (int64_t{1} << 24)) bad("max_position_embeddings must be at most 16777216");
  if (num_attention_heads <= 0 || num_attention_heads > 4096) bad("num_attention_heads must be in [1, 4096]");
  if (explicit_head_dim < 0 || explicit_head_dim > 4096) bad("head_dim must be in [1, 4096]");
  if (explicit_head_dim == 0 && hidden_size % num_attention_heads != 0)
    bad("hidden_size must be a multiple of num_attention_heads (or head_dim given)");
  if (head_dim() % 2 != 0) bad("head_dim must be even for RoPE");
  if (num_key_value_heads <= 0 || num_attention_heads % num_key_value_heads != 0)
    bad("num_attention_heads must be a multiple of num_key_value_heads");
  if (max_position_embeddings <= 0) bad("max_position_embeddings must be positive");
  if (rope_theta <= 0) bad("rope_theta must be positive");
}

nlohmann::json ModelConfig::to_json() const {
  const char* arch = model_type == "qwen2"   ? "Qwen2ForCausalLM"
                     : model_type == "qwen3" ? "Qwen3ForCausalLM"
                                             : "LlamaForCausalLM";
  nlohmann::json j = {{"architectures", {arch}},
                      {"model_type", model_type},
                      {"vocab_size", vocab_size},
                      {"hidden_size", hidden_size},
                      {"intermediate_size", intermediate_size},
                      {"num_hidden_layers", num_hidden_layers},
                      {"num_attention_heads", num_attention_heads},
                      {"num_key_value_heads", num_key_value_heads},
                      {"max_position_embeddings", max_position_embeddings},
                      {"rope_theta", rope_theta},
                      {"rms_norm_eps", rms_norm_eps},
                      {"tie_word_embeddings", tie_word_embeddings},
                      {"attention_bias", attention_bias},
                      {"hidden_act", "silu"},
                      {"torch_dtype", "float32"},
                      {"bos_token_id", bos_token_id},
                      {"eos_token_id", eos_token_id},
                      {"pad_token_id", pad_token_id}};
  if (explicit_head_dim > 0) j["head_dim"] = explicit_head_dim;
  if (!rope_scaling.type.empty())
    j["rope_scaling"] = {{"rope_type", rope_scaling.type},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  return j;
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& source) {
  ModelConfig c;
  try {
    auto need = [&](const char* key) -> const nlohmann::json& {
      if (!j.contains(key)) throw Error(source + ": config field '" + key + "' is missing");
      return j.at(key);
    };
    c.model_type = need("model_type").get<std::string>();
    c.vocab_size = need("vocab_size").get<int64_t>();
    c.hidden_size = need("hidden_size").get<int64_t>();
    c.intermediate_size = need("intermediate_size").get<int64_t>();
    c.num_hidden_layers = need("num_hidden_layers").get<int64_t>();
    c.num_attention_heads = need("num_attention_heads").get<int64_t>();
    c.num_key_value_heads = j.value("num_key_value_heads", c.num_attention_heads);
    c.max_position_embeddings = j.value("max_position_embeddings", int64_t{2048});
    c.rope_theta = j.value("rope_theta", 10000.0);
    c.rms_norm_eps = j.value("rms_norm_eps", 1e-6);
    // Absent means untied, as in transformers' LlamaConfig and Qwen2Config alike: a checkpoint that ships
    // lm_head then loads it (or fails loudly without it) instead of silently reusing the embedding.
    c.tie_word_embeddings = j.value("tie_word_embeddings", false);
    c.attention_bias = j.value("attention_bias", false);
    if (j.contains("head_dim") && !j["head_dim"].is_null())
      c.explicit_head_dim = j["head_dim"].get<int64_t>();
    // Qwen2/Qwen3 ship "use_sliding_window": false; a model that attends through a window is not this one.
    if (j.value("use_sliding_window", false))
      throw Error(source + ": use_sliding_window is true: sliding-window attention is not implemented");
    auto id_or = [&](const char* key, int64_t fallback) {
      if (!j.contains(key) || j[key].is_null()) return fallback;
      if (j[key].is_array()) return j[key].empty() ? fallback : j[key][0].get<int64_t>();
      return j[key].get<int64_t>();
    };
    c.bos_token_id = id_or("bos_token_id", -1);
    c.eos_token_id = id_or("eos_token_id", -1);
    c.pad_token_id = id_or("pad_token_id", -1);
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      const auto& r = j["rope_scaling"];
      c.rope_scaling.type = r.value("rope_type", r.value("type", std::string()));
      c.rope_scaling.factor = r.value("factor", 1.0);
      c.rope_scaling.low_freq_factor = r.value("low_freq_factor", 1.0);
      c.rope_scaling.high_freq_factor = r.value("high_freq_factor", 4.0);
      c.rope_scaling.original_max_position_embeddings =
          r.value("original_max_position_embeddings", int64_t{8192});
      if (c.rope_scaling.type == "default") c.rope_scaling.type.clear();
      if (!c.rope_scaling.type.empty() && c.rope_scaling.type != "llama3")
        throw Error(source + ": rope_scaling type '" + c.rope_scaling.type +
                    "' is not supported (known: llama3)");
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": config field has the wrong type: " + e.what());
  }
  c.validate(source);
  return c;
}

}  // namespace handoff
