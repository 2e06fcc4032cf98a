#include "cli/precision_flag.h"

#include "common/error.h"
#include "model/decoder.h"

namespace handoff {

void add_precision_flag(CLI::App* cmd, std::string& precision) {
  cmd->add_option(
         "--precision", precision,
         "fp32 | bf16 (bf16 autocast of every forward; weights, optimizer state and logits stay fp32; "
         "bench_autocast measures it on this machine)")
      ->capture_default_str();
}

void apply_precision(const std::string& precision) {
  if (precision == "fp32") {
    set_default_autocast_bf16(false);
  } else if (precision == "bf16") {
    set_default_autocast_bf16(true);
  } else {
    throw Error("unknown --precision '" + precision + "' (known: fp32, bf16)");
  }
}

}  // namespace handoff
