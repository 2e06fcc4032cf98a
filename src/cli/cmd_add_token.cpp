// `handoff add-token`: give a pretrained checkpoint the hand-off token (a new special token and embedding
// row).
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "io/add_special_token.h"
#include "protocol/response.h"

namespace handoff::cli {

void register_add_token(CLI::App& app) {
  auto* cmd = app.add_subcommand("add-token", "Add a special token (default " + std::string(kHandoffMarker) +
                                                  ") to a checkpoint: tokenizer.json, config.json "
                                                  "vocab_size, and one new embedding / LM-head row set "
                                                  "to the mean of the existing rows; writes a new directory");
  struct Flags {
    std::string model, out, token = std::string(kHandoffMarker);
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("--model", f->model, "Input checkpoint directory (HF layout)")->required();
  cmd->add_option("--out", f->out, "Output checkpoint directory (must not exist yet)")->required();
  cmd->add_option("--token", f->token, "Token text to add")->capture_default_str();
  cmd->callback([f] {
    const AddedToken a = add_special_token(f->model, f->out, f->token);
    std::printf(
        "added %s as id %lld: vocab_size %lld -> %lld (embed_tokens%s +1 row, the mean of the others)\n",
        a.token.c_str(), static_cast<long long>(a.id), static_cast<long long>(a.old_vocab_size),
        static_cast<long long>(a.new_vocab_size), a.resized_lm_head ? " and lm_head" : "");
    std::printf("wrote %s\n", f->out.c_str());
  });
}

}  // namespace handoff::cli
