// Where a GAPG step's time goes, op by op: the quick preset's rollout (32 prompts x 8 samples from
// models/device-chain, the trainer's own rollout()) and a policy update over the samples of its first 20
// prompts (about the rows a GAPG step keeps), STEPS steps on one thread under the ATen profiler. Writes a
// Chrome trace (chrome://tracing) that bench/profile_table.py turns into a table of self times per op and
// stage. No cloud: rewards are the verifier's verdicts alone, which moves no cost.
// Usage: bench_gapg_profile TRACE.json [STEPS = 4] [PRESET = configs/quick.json] [DEVICE =
// models/device-chain]
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/checkpoint.h"
#include "rl/method_registry.h"
#include "rl/policy_loss.h"
#include "rl/rl_step.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

// The samples of the first `kept` prompts as an update batch, rewards from the verifier, GAPG advantages.
PolicyBatch verifier_batch(Rollout& r, int kept, int group) {
  for (auto& s : r.samples) s.reward = s.local_correct.value_or(false) ? 1.0 : 0.0;
  Selection sel;
  for (int p = 0; p < kept && p < static_cast<int>(r.prompts.size()); ++p) sel.kept.push_back(p);
  return policy_batch(r, sel, find_rl_method("gapg"), group);
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) throw Error("usage: bench_gapg_profile TRACE.json [STEPS] [PRESET] [DEVICE]");
  const int steps = argc > 2 ? std::atoi(argv[2]) : 4;
  const std::string preset_path = argc > 3 ? argv[3] : "configs/quick.json";
  const std::string device = argc > 4 ? argv[4] : "models/device-chain";
  configure_threads(1);
  std::ifstream in(preset_path);
  if (!in) throw Error("cannot read preset " + preset_path);
  RlOptions o = RlOptions::from_json(nlohmann::json::parse(in).at("rl"), preset_path);
  auto task = make_task(o.task);
  auto loaded = load_checkpoint(device, "cpu");
  const DeviceSpeech io{*loaded.tokenizer, loaded.protocol};
  const auto pool = training_pool(*task, resolve_difficulties(*task, o.difficulties), o);
  torch::optim::AdamW opt(loaded.model->parameters(), torch::optim::AdamWOptions(o.lr));
  double roll_s = 0, upd_s = 0;
  auto one_step = [&](int64_t step) {
    const auto t0 = std::chrono::steady_clock::now();
    Rollout r = [&] {
      RECORD_USER_SCOPE("stage::rollout");
      return rollout(loaded.model, io, *task, pool, o, step);
    }();
    const auto t1 = std::chrono::steady_clock::now();
    {
      RECORD_USER_SCOPE("stage::update");
      policy_update(loaded.model, opt, verifier_batch(r, 20, o.group), o, nullptr);
    }
    const auto t2 = std::chrono::steady_clock::now();
    roll_s += std::chrono::duration<double>(t1 - t0).count();
    upd_s += std::chrono::duration<double>(t2 - t1).count();
  };
  one_step(0);  // warm-up, outside the trace
  roll_s = upd_s = 0;
  {
    torch::autograd::profiler::RecordProfile guard(argv[1]);
    for (int s = 1; s <= steps; ++s) one_step(s);
  }
  std::printf("profiled %d steps: rollout %.3f s/step, update %.3f s/step (with the profiler's own cost)\n",
              steps, roll_s / steps, upd_s / steps);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gapg_profile: %s\n", e.what());
  return 1;
}
