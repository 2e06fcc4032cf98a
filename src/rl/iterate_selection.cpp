#include "rl/iterate_selection.h"

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"

namespace handoff {

namespace {
const char* kStateFile = "selection.json";
}

IterateSelection::IterateSelection(std::string dir, double target, int64_t from_step)
    : dir_(std::move(dir)), target_(target), from_step_(from_step) {
  if (!(target > 0 && target < 1)) throw Error("iterate selection: the target rate must lie in (0, 1)");
}

void IterateSelection::restore(int64_t step) {
  recover_directory(dir_);
  const std::string file = dir_ + "/" + kStateFile;
  if (!std::filesystem::exists(file)) return;
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(read_file(file));
    const auto s = st.at("step").get<int64_t>();
    const double r = st.at("probe_call_rate").get<double>();
    if (s > step) return;  // from steps the resumed run replays
    if (!(r >= 0 && r <= 1)) throw Error("probe_call_rate outside [0, 1]");
    // A candidate from before this run's window or for another target is not one of this run's.
    if (s < from_step_ || std::abs(st.value("target", -1.0) - target_) > 1e-12) return;
    step_ = s;
    rate_ = r;
  } catch (const std::exception& e) {
    throw Error(file + ": not a valid selection state (" + e.what() + ")",
                "remove " + dir_ + " to select again from the steps that follow");
  }
}

void IterateSelection::offer(int64_t step, double rate, CausalLM& model, const Tokenizer& tok,
                             const Protocol& protocol) {
  if (step < from_step_) return;
  if (step_ >= 0 && std::abs(rate - target_) > std::abs(rate_ - target_)) return;
  const nlohmann::json st = {{"step", step}, {"probe_call_rate", rate}, {"target", target_}};
  save_checkpoint(dir_, model, tok, {{kStateFile, st.dump(2)}, {kProtocolFile, protocol.to_json_text()}});
  step_ = step;
  rate_ = rate;
}

int64_t IterateSelection::apply(CausalLM& model) const {
  if (step_ < 0) return -1;
  load_weights(model, dir_);
  return step_;
}

}  // namespace handoff
