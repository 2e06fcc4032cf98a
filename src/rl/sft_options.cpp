#include "rl/sft_options.h"

#include "common/option_table.h"

namespace handoff {

namespace {

OptionTable<SftOptions> make_table() {
  namespace c = option_checks;
  using O = SftOptions;
  OptionTable<O> t("SFT option");
  // --task is `handoff sft`'s own flag: it also picks the preset's difficulties_by_task entry.
  t.add<std::string>(
       "task", "", "", [](O & o) -> auto& { return o.task; })
      .add<std::vector<int>>(
          "difficulties", "", "", [](O & o) -> auto& { return o.difficulties; })
      .add<int64_t>(
          "steps", "--steps", "Override the preset's step count", [](O & o) -> auto& { return o.steps; },
          c::positive<int64_t>())
      .add<int64_t>(
          "batch_size", "--batch-size", "Override the preset's batch size",
          [](O & o) -> auto& { return o.batch_size; }, c::positive<int64_t>())
      .add<double>(
          "lr", "--lr", "Override the peak learning rate", [](O & o) -> auto& { return o.lr; },
          c::positive<double>())
      .add<double>(
          "min_lr_ratio", "", "", [](O & o) -> auto& { return o.min_lr_ratio; }, c::in_range(0.0, 1.0))
      .add<int64_t>(
          "warmup_steps", "", "", [](O & o) -> auto& { return o.warmup_steps; }, c::at_least<int64_t>(0))
      .add<double>(
          "weight_decay", "", "", [](O & o) -> auto& { return o.weight_decay; }, c::at_least(0.0))
      .add<double>(
          "grad_clip", "", "", [](O & o) -> auto& { return o.grad_clip; })
      .add<double>(
          "handoff_fraction", "--handoff-fraction", "Fraction of items trained to end in <handoff>",
          [](O & o) -> auto& { return o.handoff_fraction; }, c::in_range(0.0, 1.0))
      .add<std::string>(
          "protocol", "--protocol",
          "Format of the targets: handoff (default: Answer: lines, <handoff>), paper, or a protocol JSON "
          "file",
          [](O & o) -> auto& { return o.protocol; })
      .add<uint64_t>(
          "seed", "--seed", "Seed of initialisation and data", [](O & o) -> auto& { return o.seed; })
      .add<int64_t>(
          "log_every", "--log-every", "Steps between metrics lines",
          [](O & o) -> auto& { return o.log_every; }, c::positive<int64_t>())
      .add<int64_t>(
          "checkpoint_every", "--checkpoint-every", "Steps between checkpoints (the last step always saves)",
          [](O & o) -> auto& { return o.checkpoint_every; })
      .add<int64_t>(
          "stop_at_step", "--stop-at-step",
          "Stop (with a checkpoint) at this step while keeping the schedule of --steps",
          [](O & o) -> auto& { return o.stop_at_step; })
      .add<int64_t>(
          "update_tokens", "--update-tokens",
          "Micro-batches of rows of similar length, at most this many padded tokens each (default 512; 0 = "
          "the whole batch at once, padded to its longest row, as the reference checkpoints were trained)",
          [](O & o) -> auto& { return o.update_tokens; }, c::at_least<int64_t>(0))
      .add<std::string>(
          "device", "--device", "cpu | cuda", [](O & o) -> auto& { return o.device; })
      .not_written()
      .add<bool>(
          "", "--quiet", "No progress lines", [](O & o) -> auto& { return o.quiet; });
  return t;
}

}  // namespace

const OptionTable<SftOptions>& sft_option_table() {
  static const OptionTable<SftOptions> table = make_table();
  return table;
}

nlohmann::json SftOptions::to_json() const {
  return sft_option_table().to_json(*this);
}

SftOptions SftOptions::from_json(const nlohmann::json& j, const std::string& source) {
  return sft_option_table().from_json(j, source);
}

void SftOptions::validate() const {
  sft_option_table().validate(*this);
}

}  // namespace handoff
