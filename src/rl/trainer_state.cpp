#include "rl/trainer_state.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "runtime/kernels.h"

namespace handoff {

bool has_trainer_state(const std::string& model_dir) {
  return file_exists(model_dir + "/trainer_state.json");
}

bool prepare_resume(const std::string& model_dir) {
  if (recover_directory(model_dir))
    std::fprintf(stderr, "completed the interrupted checkpoint save of %s\n", model_dir.c_str());
  if (has_trainer_state(model_dir)) return true;
  // Restarting at step 0 here would overwrite a model the user may want: refuse instead.
  if (std::filesystem::exists(model_dir))
    throw Error("cannot resume: " + model_dir + " exists but holds no trainer_state.json",
                "it is not a training checkpoint (a model copied in?); choose another --out, or delete it to "
                "start over");
  return false;  // killed before its first checkpoint: nothing to resume
}

nlohmann::json read_trainer_state(const std::string& model_dir) {
  const std::string path = model_dir + "/trainer_state.json";
  nlohmann::json st;
  try {
    st = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " is not valid JSON: " + e.what(), "delete the run directory to start over");
  }
  if (!st.is_object() || !st.contains("step") || !st["step"].is_number_integer())
    throw Error(path + " has no integer \"step\"", "delete the run directory to start over");
  return st;
}

void save_training_checkpoint(const std::string& model_dir, CausalLM& model, const Tokenizer& tok,
                              const Protocol& protocol, nlohmann::json state, torch::optim::Optimizer& opt) {
  state["kernels"] = kernels_summary();
  std::ostringstream os;
  torch::save(opt, os);
  save_checkpoint(model_dir, model, tok,
                  {{"trainer_state.json", state.dump(2) + "\n"},
                   {"optimizer.pt", os.str()},
                   {kProtocolFile, protocol.to_json_text()}});
}

std::string checkpoint_fingerprint(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) return "";
  std::string f;
  for (const char* name : {"config.json", "trainer_state.json"})
    if (file_exists(dir + "/" + name)) f += read_file(dir + "/" + name);
  std::vector<std::string> sizes;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file())
      sizes.push_back(e.path().filename().string() + ":" + std::to_string(e.file_size()));
  std::sort(sizes.begin(), sizes.end());
  for (const auto& s : sizes) f += "\n" + s;
  return f;
}

void load_optimizer_state(const std::string& model_dir, torch::optim::Optimizer& opt) {
  const std::string path = model_dir + "/optimizer.pt";
  if (!file_exists(path))
    throw Error(
        "cannot resume: " + path + " is missing",
        "a training checkpoint saves it beside trainer_state.json; delete the run directory to start over");
  std::istringstream is(read_file(path));
  try {
    torch::load(opt, is);
  } catch (const c10::Error& e) {
    throw Error(
        "cannot resume: " + path + " is not this run's optimizer state: " + e.what_without_backtrace(),
        "delete the run directory to start over");
  }
}

}  // namespace handoff
