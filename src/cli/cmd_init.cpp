// `handoff init`: a small random checkpoint around any tokenizer directory (a real model's tokenizer.json,
// tokenizer_config.json, generation_config.json, or a SentencePiece tokenizer.model) — the device of a
// rehearsal (scripts/rehearse-real-model.sh) whose mechanics (ids, stop tokens, templates, protocols) are
// those of the real model, at a size that trains in seconds.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "io/checkpoint.h"

namespace handoff::cli {

namespace {
struct InitArgs {
  std::string tokenizer, out, arch = "qwen2";
  int64_t hidden = 64, layers = 2, heads = 4, kv_heads = 2, context = 1024;
  uint64_t seed = 1;
};

void run_init(const InitArgs& a) {
  auto tok = load_tokenizer(a.tokenizer);
  ModelConfig c;
  c.model_type = a.arch;
  c.vocab_size = tok->vocab_size();
  c.hidden_size = a.hidden;
  c.intermediate_size = 3 * a.hidden;
  c.num_hidden_layers = a.layers;
  c.num_attention_heads = a.heads;
  c.num_key_value_heads = a.kv_heads;
  c.max_position_embeddings = a.context;
  c.bos_token_id = tok->bos_id();
  c.eos_token_id = tok->eos_id();
  c.pad_token_id = tok->pad_id();
  c.validate("handoff init");
  torch::manual_seed(a.seed);
  CausalLM model(c);
  save_checkpoint(a.out, model, *tok);
  std::printf("wrote %s: a random %s model (%lld parameters, vocabulary %lld) around %s\n", a.out.c_str(),
              a.arch.c_str(), static_cast<long long>(c.num_parameters()),
              static_cast<long long>(c.vocab_size), a.tokenizer.c_str());
}
}  // namespace

void register_init(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  auto* cmd = app.add_subcommand(
      "init", "Write a small random checkpoint around a tokenizer directory (for rehearsals and tests)");
  cmd->add_option("--tokenizer", a->tokenizer, "Directory with tokenizer.json (or tokenizer.model)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", a->out, "Checkpoint directory to write")->required();
  cmd->add_option("--arch", a->arch, "llama | qwen2 | qwen3")
      ->check(CLI::IsMember({"llama", "qwen2", "qwen3"}))
      ->capture_default_str();
  cmd->add_option("--hidden", a->hidden, "Hidden size")->check(CLI::Range(8, 8192))->capture_default_str();
  cmd->add_option("--layers", a->layers, "Layers")->check(CLI::Range(1, 128))->capture_default_str();
  cmd->add_option("--heads", a->heads, "Attention heads")->check(CLI::Range(1, 128))->capture_default_str();
  cmd->add_option("--kv-heads", a->kv_heads, "Key/value heads")
      ->check(CLI::Range(1, 128))
      ->capture_default_str();
  cmd->add_option("--context", a->context, "Context length")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Initialisation seed")->capture_default_str();
  cmd->callback([a] { run_init(*a); });
}

}  // namespace handoff::cli
