#include "cli/weights_flag.h"

#include "common/error.h"

namespace handoff {

void add_weights_flag(CLI::App* cmd, std::string& weights) {
  cmd->add_option("--weights", weights,
                  "fp32 | bf16 | int8: how the linear weights are stored while answering (bf16: half the "
                  "bytes batch-1 decoding reads; int8: a quarter, per-row scales; fp32 activations and sums; "
                  "bench/run_llama_cpp_decode.sh)")
      ->capture_default_str();
}

void apply_weights(LoadedModel& m, const std::string& weights) {
  if (weights == "fp32") return;
  if (weights != "bf16" && weights != "int8")
    throw Error("unknown --weights '" + weights + "' (known: fp32, bf16, int8)");
  if (!m.model->device().is_cpu())
    throw Error("--weights " + weights + " is a CPU kernel; on " + m.model->device().str() +
                " use --precision bf16");
  if (weights == "int8" && m.model->autocast_bf16)
    throw Error("--weights int8 keeps fp32 activations, and --precision bf16 makes them bf16",
                "use one of them");
  if (weights == "bf16")
    m.model->store_weights_bf16();
  else
    m.model->store_weights_int8();
}

}  // namespace handoff
