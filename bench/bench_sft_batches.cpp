// The SFT batches a preset's recipe trains on, as JSON lines (one step per line: {"step", "prompts",
// "completions"} of token ids), so that the python3-torch peer trainer (bench/peer_pytorch_sft.py --batches)
// trains on exactly the rows `handoff sft` does (bench/run_sft_peer.sh, issue 18).
// Usage: bench_sft_batches PRESET.json ROLE STEPS > batches.jsonl
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "collab/device_run.h"
#include "common/error.h"
#include "protocol/protocol.h"
#include "rl/sft_batch.h"
#include "tasks/task.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;

int main(int argc, char** argv) try {
  if (argc != 4) throw Error("usage: bench_sft_batches PRESET.json ROLE STEPS");
  std::ifstream in(argv[1]);
  if (!in) throw Error(std::string("cannot read preset ") + argv[1]);
  const auto preset = nlohmann::json::parse(in);
  const std::string role = argv[2];
  const long steps = std::stol(argv[3]);
  auto opts = SftOptions::from_json(preset.at(role).at("sft"), std::string(argv[1]) + "/" + role + "/sft");
  opts.role = role;
  auto task = make_task(opts.task);
  const auto mix = resolve_difficulties(*task, opts.difficulties);
  CharTokenizer tok;
  Protocol protocol;
  const DeviceSpeech io{tok, protocol};
  for (long step = 0; step < steps; ++step) {
    const SftBatch b = make_sft_batch(*task, io, opts, mix, step);
    std::cout << nlohmann::json{{"step", step}, {"prompts", b.prompts}, {"completions", b.completions}}.dump()
              << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_sft_batches: %s\n", e.what());
  return 1;
}
