#include "io/gguf_export.h"

#include <cmath>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/gguf_tokenizer.h"

namespace handoff {

namespace {

using nlohmann::json;

// llama.cpp's name for each parameter of a decoder layer (gguf-py constants.py, TENSOR_NAMES).
const std::map<std::string, std::string>& layer_names() {
  static const std::map<std::string, std::string> m = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
  };
  return m;
}

// "model.layers.3.mlp.up_proj.weight" → "blk.3.ffn_up.weight"; throws for a name llama.cpp has no place for.
std::string gguf_name(const std::string& hf) {
  if (hf == "model.embed_tokens.weight") return "token_embd.weight";
  if (hf == "model.norm.weight") return "output_norm.weight";
  if (hf == "lm_head.weight") return "output.weight";
  const std::string prefix = "model.layers.";
  if (hf.rfind(prefix, 0) == 0) {
    const size_t dot = hf.find('.', prefix.size());
    const auto it = dot == std::string::npos ? layer_names().end() : layer_names().find(hf.substr(dot + 1));
    if (it != layer_names().end())
      return "blk." + hf.substr(prefix.size(), dot - prefix.size()) + "." + it->second;
  }
  throw Error("export-gguf: the parameter '" + hf + "' has no GGUF tensor name",
              "only Llama / Qwen2 / Qwen3 decoders are exported");
}

// Llama-3 frequency scaling as llama.cpp reads it: one F32 tensor of per-frequency divisors
// (convert_hf_to_gguf.py LlamaModel.generate_extra_tensors).
at::Tensor llama3_rope_divisors(const ModelConfig& c) {
  const auto& s = c.rope_scaling;
  const int64_t hd = c.head_dim();
  const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
  const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
  at::Tensor out = at::empty({hd / 2}, at::kFloat);
  for (int64_t i = 0; i < hd / 2; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, 2.0 * static_cast<double>(i) / static_cast<double>(hd));
    const double wavelen = 2 * M_PI / freq;
    double divisor = 1.0;
    if (wavelen > low_wavelen) {
      divisor = s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth =
          (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      divisor = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    out[i] = divisor;
  }
  return out;
}

void add_hyper_parameters(GgufWriter& w, const std::string& arch, const ModelConfig& c, int64_t vocab) {
  const auto u32 = [](int64_t v) { return static_cast<uint32_t>(v); };
  w.add_u32(arch + ".vocab_size", u32(vocab));
  w.add_u32(arch + ".context_length", u32(c.max_position_embeddings));
  w.add_u32(arch + ".embedding_length", u32(c.hidden_size));
  w.add_u32(arch + ".block_count", u32(c.num_hidden_layers));
  w.add_u32(arch + ".feed_forward_length", u32(c.intermediate_size));
  w.add_u32(arch + ".attention.head_count", u32(c.num_attention_heads));
  w.add_u32(arch + ".attention.head_count_kv", u32(c.num_key_value_heads));
  w.add_u32(arch + ".attention.key_length", u32(c.head_dim()));
  w.add_u32(arch + ".attention.value_length", u32(c.head_dim()));
  w.add_f32(arch + ".attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  w.add_f32(arch + ".rope.freq_base", static_cast<float>(c.rope_theta));
  w.add_u32(arch + ".rope.dimension_count", u32(c.head_dim()));
}

// The type a tensor is written in: norms, biases and other vectors stay f32 (as llama.cpp's converter does);
// q8_0 falls back to f16 where a row is not whole blocks.
GgmlType type_for(const at::Tensor& t, GgmlType wanted) {
  if (t.dim() < 2) return GgmlType::kF32;
  if (wanted == GgmlType::kQ8_0 && t.size(-1) % 32 != 0) return GgmlType::kF16;
  return wanted;
}

}  // namespace

GgmlType parse_gguf_type(const std::string& s) {
  if (s == "f32") return GgmlType::kF32;
  if (s == "f16") return GgmlType::kF16;
  if (s == "q8_0") return GgmlType::kQ8_0;
  throw Error("export-gguf: unknown --type '" + s + "'", "use f32, f16 or q8_0");
}

at::Tensor permute_for_llama_rope(const at::Tensor& w, int64_t groups) {
  const int64_t rows = w.size(0);
  if (groups <= 0 || rows % (2 * groups) != 0)
    throw Error("export-gguf: " + std::to_string(rows) + " rows do not split into " + std::to_string(groups) +
                " heads of an even size");
  std::vector<int64_t> split = {groups, 2, rows / groups / 2};
  for (int64_t d = 1; d < w.dim(); ++d) split.push_back(w.size(d));
  return w.reshape(split).transpose(1, 2).reshape(w.sizes()).contiguous();
}

GgufExportSummary export_gguf(const LoadedModel& m, const std::string& out, GgmlType type) {
  const ModelConfig& c = m.model->config;
  GgufExportSummary s;
  s.arch = c.model_type;
  if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
    throw Error("export-gguf: architecture '" + s.arch + "' is not supported", "llama, qwen2 or qwen3");
  if (!c.rope_scaling.type.empty() && c.rope_scaling.type != "llama3")
    throw Error("export-gguf: rope_scaling '" + c.rope_scaling.type + "' is not supported", "llama3 or none");
  // llama.cpp reads rope_freqs.weight for the llama architecture only: a qwen2/qwen3 file would silently
  // decode with unscaled frequencies.
  if (c.rope_scaling.type == "llama3" && s.arch != "llama")
    throw Error("export-gguf: llama3 rope scaling on a " + s.arch + " model has no llama.cpp equivalent",
                "llama3 rope scaling is exported for the llama architecture only");
  s.vocab = c.vocab_size;

  GgufWriter w;
  w.add_string("general.architecture", s.arch);
  w.add_string("general.name", std::filesystem::path(m.dir).filename().string());
  w.add_u32("general.alignment", 32);
  w.add_u32("general.file_type", type == GgmlType::kF32 ? 0 : type == GgmlType::kF16 ? 1 : 7);
  if (type == GgmlType::kQ8_0) w.add_u32("general.quantization_version", 2);
  add_hyper_parameters(w, s.arch, c, c.vocab_size);
  const GgufVocab vocab = gguf_vocab(*m.tokenizer, c.vocab_size);
  add_gguf_vocab(w, vocab);
  s.tokenizer_model = vocab.model;
  s.pre_tokenizer = vocab.pre;

  const bool permute = s.arch == "llama";
  for (const auto& p : m.model->named_parameters()) {
    const std::string name = gguf_name(p.key());
    at::Tensor t = p.value().detach().to(at::kFloat);
    if (permute && name.find(".attn_q.") != std::string::npos)
      t = permute_for_llama_rope(t, c.num_attention_heads);
    if (permute && name.find(".attn_k.") != std::string::npos)
      t = permute_for_llama_rope(t, c.num_key_value_heads);
    const GgmlType tt = type_for(t, type);
    if (tt != type && t.dim() >= 2) s.fell_back_to_f16.push_back(name);
    w.add_tensor(name, t, tt);
    ++s.tensors_by_type[ggml_type_name(tt)];
  }
  if (c.rope_scaling.type == "llama3") {
    w.add_tensor("rope_freqs.weight", llama3_rope_divisors(c), GgmlType::kF32);
    ++s.tensors_by_type["f32"];
  }
  s.tensors = static_cast<int64_t>(w.tensor_count());
  w.write(out);
  return s;
}

}  // namespace handoff
