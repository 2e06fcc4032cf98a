// `handoff export-gguf`: a checkpoint (the trained device, or any Llama / Qwen2 / Qwen3 checkpoint handoff
// loads) as one GGUF file for llama.cpp and the runtimes built on it (io/gguf_export.h).
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "io/checkpoint.h"
#include "io/gguf_export.h"

namespace handoff::cli {

void register_export_gguf(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("export-gguf",
                         "Write a checkpoint as a GGUF file for llama.cpp (weights, hyper-parameters, "
                         "tokenizer with the hand-off token); the file is written atomically");
  struct Flags {
    std::string model, out, type = "f32";
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Checkpoint directory (HF layout)")->required();
  cmd->add_option("--out", f->out, "Output file (.gguf)")->required();
  cmd->add_option("--type", f->type, "Matrix type: f32 | f16 | q8_0 (norms and biases stay f32)")
      ->capture_default_str();
  cmd->callback([f] {
    const GgmlType type = parse_gguf_type(f->type);
    const LoadedModel m = load_checkpoint(f->model);
    const GgufExportSummary s = export_gguf(m, f->out, type);
    std::string types;
    for (const auto& [t, n] : s.tensors_by_type)
      types += (types.empty() ? "" : ", ") + std::to_string(n) + " " + t;
    std::printf("wrote %s: %s, %lld tensors (%s), %.1f MB; tokenizer %s (pre %s), %lld tokens\n",
                f->out.c_str(), s.arch.c_str(), static_cast<long long>(s.tensors), types.c_str(),
                static_cast<double>(std::filesystem::file_size(f->out)) / 1e6, s.tokenizer_model.c_str(),
                s.pre_tokenizer.c_str(), static_cast<long long>(s.vocab));
    for (const auto& name : s.fell_back_to_f16)
      std::printf(
          "  %s: rows are not a multiple of 32 values, written as f16 (as llama.cpp's converter does)\n",
          name.c_str());
  });
}

}  // namespace handoff::cli
