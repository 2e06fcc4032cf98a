#pragma once
// A checkpoint is a Hugging Face style directory: config.json, model.safetensors (HF tensor names), and the
// tokenizer's files — tokenizer.json (char/BPE) or tokenizer.model (SentencePiece), plus
// tokenizer_config.json where the tokenizer has one (Tokenizer::extra_files). Saving is atomic at the
// directory level: a checkpoint is complete or absent.
#include <memory>
#include <string>
#include <vector>

#include "model/decoder.h"
#include "protocol/protocol.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

struct LoadedModel {
  CausalLM model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
  std::string dir;
  // What the device is told and how its replies are read: DIR/protocol.json, or the default when the
  // checkpoint records none. A command's --protocol replaces it with use_protocol().
  Protocol protocol;
  // Sets `protocol` after checking that the tokenizer can write it (its <handoff> token only when
  // `needs_handoff`: a method that never calls the cloud needs none), and applies its thinking switch.
  void use_protocol(Protocol p, bool needs_handoff = true);
};

// Writes DIR via DIR.tmp + rename. `extra_files` (name → bytes) are written inside too (trainer state).
void save_checkpoint(const std::string& dir, CausalLM& model, const Tokenizer& tokenizer,
                     const std::vector<std::pair<std::string, std::string>>& extra_files = {});

// Loads config.json, model.safetensors (or sharded with model.safetensors.index.json) and the tokenizer
// (tokenizer.json or tokenizer.model).
// Errors name the file and the tensor, and say what to run.
LoadedModel load_checkpoint(const std::string& dir, const std::string& device = "cpu");

// The weights of `model` from a safetensors file set; throws Error listing missing tensors / bad shapes.
void load_weights(CausalLM& model, const std::string& dir);

class SafetensorsFile;
// The weight files of checkpoint DIR, opened and validated: model.safetensors, or every shard named in
// model.safetensors.index.json. Throws Error naming the missing or corrupt file.
std::vector<std::unique_ptr<SafetensorsFile>> open_weight_files(const std::string& dir);

// Makes the complete directory TMP appear as DIR. kExchange swaps the names in one atomic step (Linux
// renameat2 RENAME_EXCHANGE), falling back to kTwoRenames where the filesystem refuses it: DIR -> DIR.old,
// TMP -> DIR, remove DIR.old. A kill between those renames leaves no DIR; recover_directory completes it.
enum class PublishMode { kExchange, kTwoRenames };
void publish_directory(const std::string& tmp, const std::string& dir,
                       PublishMode mode = PublishMode::kExchange);

// Completes a publish_directory interrupted at any moment, so that DIR is a complete checkpoint again if one
// was ever published: returns true when it had to move a directory into place.
bool recover_directory(const std::string& dir);

}  // namespace handoff
