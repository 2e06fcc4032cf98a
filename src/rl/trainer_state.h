#pragma once
// What a training run saves beside its model so that --resume continues exactly: trainer_state.json (the
// step, the run's options, the kernels, and each trainer's own counters) and optimizer.pt (AdamW's moments).
// SFT and RL both save and resume through here; the checkpoint as a whole is written atomically by
// io/checkpoint.h.
#include <string>

#include "protocol/protocol.h"

#include <nlohmann/json.hpp>

#include "model/decoder.h"
#include "tokenizer/tokenizer.h"

namespace torch::optim {
class Optimizer;
}

namespace handoff {

// Whether `model_dir` holds a training checkpoint (a trainer_state.json) to resume from.
bool has_trainer_state(const std::string& model_dir);
// For --resume: completes a checkpoint save that a kill interrupted (io/checkpoint.h), then says whether
// MODEL_DIR holds a trainer state to continue from. False when there is no MODEL_DIR yet (killed before the
// first save); an Error when MODEL_DIR exists but is not a training checkpoint.
bool prepare_resume(const std::string& model_dir);
// MODEL_DIR/trainer_state.json; an Error naming the file when it is unreadable or lacks "step".
nlohmann::json read_trainer_state(const std::string& model_dir);
// The model, its tokenizer and protocol, `state` (with the kernels added) and the optimiser, as one atomic
// checkpoint.
void save_training_checkpoint(const std::string& model_dir, CausalLM& model, const Tokenizer& tok,
                              const Protocol& protocol, nlohmann::json state, torch::optim::Optimizer& opt);
// What identifies checkpoint DIR cheaply (its config.json, trainer_state.json and the sizes of its files),
// for data-parallel ranks to check that they start from the same one; "" when DIR does not exist.
std::string checkpoint_fingerprint(const std::string& dir);
// Restores the optimiser's state from MODEL_DIR/optimizer.pt; an Error naming the file if it is missing or
// does not fit.
void load_optimizer_state(const std::string& model_dir, torch::optim::Optimizer& opt);

}  // namespace handoff
