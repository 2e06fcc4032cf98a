#pragma once
// Options of supervised warm start (`handoff sft`, a preset's device.sft / cloud.sft). Every field is
// declared once, in sft_option_table() (sft_options.cpp): JSON key, CLI flag, help and check.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace handoff {

struct SftOptions {
  std::string task = "chain";
  std::vector<int> difficulties;  // training mix, uniform over these; empty → the task's full range
  int64_t steps = 1000;
  int64_t batch_size = 64;
  double lr = 3e-3;
  double min_lr_ratio = 0.1;  // cosine decays to lr · min_lr_ratio
  int64_t warmup_steps = 100;
  double weight_decay = 0.05;
  double grad_clip = 1.0;
  double handoff_fraction = 0.0;  // fraction of items whose target ends in <handoff> after a solution prefix
  uint64_t seed = 1;
  int64_t log_every = 50;
  int64_t checkpoint_every = 500;
  std::string device = "cpu";
  // The format of the targets (protocol.h): a built-in name or a protocol JSON file; empty → the default.
  std::string protocol;
  // Which side of the protocol the model is trained for: "device" prompts are the device's conversation,
  // "cloud" ones the cloud's (what it will be asked). Set by `handoff sft --role`; not a recorded option.
  std::string role = "device";
  bool quiet = false;
  // > 0: stop (with a checkpoint) at this step of the o.steps schedule, as if interrupted: tests, time boxes,
  // and the cloud reference model (its cosine schedule is 6,000 steps; it is stopped at 1,500).
  int64_t stop_at_step = -1;
  // > 0: each batch runs as micro-batches of rows of similar length, at most this many padded tokens each,
  // whose gradients add up to the batch's (the same step up to float summation order; issue 18: a batch
  // padded to its longest row computes 30–46 % padding, these 2–8 %, and the bytes no longer depend on the
  // thread count). 512: the fastest of 256–2048 on the quick and hops recipes (d = 64 and 128). 0: the whole
  // batch at once, padded to its longest row, as the reference checkpoints in models/ were trained (their
  // cards' commands say --update-tokens 0).
  int64_t update_tokens = 512;
  // > 1: each batch's rows dealt to this many threads, each running its share on one ATen thread
  // (runtime/data_threads.h); set by the commands' thread rule (cli/thread_flag.h), not a recorded option.
  int data_threads = 1;

  nlohmann::json to_json() const;
  static SftOptions from_json(const nlohmann::json& j, const std::string& source);  // unknown keys → Error
  void validate() const;                                                            // throws Error
};

template <class T>
class OptionTable;
// The one table of SftOptions' fields (JSON, CLI flags, checks).
const OptionTable<SftOptions>& sft_option_table();

}  // namespace handoff
