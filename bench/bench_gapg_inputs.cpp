// What a GAPG step works on, for the python3-torch peer (bench/peer_pytorch_gapg.py, issue 18): the device's
// tokenizer facts, the preset's RL settings, and for each step the prompts `handoff train` draws (the same
// pool and the same draw as rl_step.cpp's rollout) as token ids with their answers and the cloud's verdict,
// read through the run's cloud cache (an answer missing from it is asked of the cloud, as the trainer would).
// Usage: bench_gapg_inputs PRESET.json DEVICE_DIR STEPS CLOUD_URL CACHE.jsonl > inputs.jsonl
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "cloud/cloud_client.h"
#include "collab/cloud_answers.h"
#include "collab/device_run.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "protocol/final_answer.h"
#include "rl/rl_options.h"
#include "rl/rl_step.h"
#include "tasks/task.h"

using namespace handoff;

namespace {

nlohmann::json meta(const RlOptions& o, const Tokenizer& tok) {
  std::vector<std::string> vocab;
  for (int id = 0; id < tok.vocab_size(); ++id) vocab.push_back(tok.decode({id}));
  auto stops = tok.stop_ids();
  if (tok.handoff_id() >= 0) stops.push_back(tok.handoff_id());
  return {{"vocab", vocab},
          {"eos_id", tok.eos_id()},
          {"handoff_id", tok.handoff_id()},
          {"stop_ids", stops},
          {"group", o.group},
          {"temperature", o.temperature},
          {"top_p", o.top_p},
          {"max_new_tokens", o.max_new_tokens},
          {"lr", o.lr},
          {"grad_clip", o.grad_clip},
          {"update_tokens", o.update_tokens},
          {"rho", o.budget},
          {"alpha_a", o.weights.alpha_a},
          {"alpha_c", o.weights.alpha_c},
          {"alpha_f", o.weights.alpha_f}};
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc != 6) throw Error("usage: bench_gapg_inputs PRESET.json DEVICE_DIR STEPS CLOUD_URL CACHE.jsonl");
  std::ifstream in(argv[1]);
  if (!in) throw Error(std::string("cannot read preset ") + argv[1]);
  const auto preset = nlohmann::json::parse(in);
  RlOptions o = RlOptions::from_json(preset.at("rl"), argv[1]);
  const long steps = std::stol(argv[3]);
  auto task = make_task(o.task);
  auto loaded = load_checkpoint(argv[2], "cpu");
  const Tokenizer& tok = *loaded.tokenizer;
  const DeviceSpeech io{tok, loaded.protocol};
  CloudClient client(cloud_client_options(argv[4], o.cloud_model, "", o.cloud_timeout_s, o.cloud_retries));
  CloudAnswerCache cloud(client, argv[5], o.cloud_max_tokens, "bench_gapg_inputs", loaded.protocol);
  const auto pool = training_pool(*task, resolve_difficulties(*task, o.difficulties), o);
  std::cout << nlohmann::json{{"meta", meta(o, tok)}}.dump() << "\n";
  for (long step = 0; step < steps; ++step) {
    std::mt19937_64 rng(step_seed(o.seed, static_cast<uint64_t>(step), 1));  // rl_step.cpp's draw
    nlohmann::json prompts = nlohmann::json::array();
    for (int64_t p = 0; p < o.prompts_per_step; ++p) {
      const Problem& item = pool[rng() % pool.size()];
      const auto reply = extract_final_answer(cloud.ask(item.prompt).content);
      prompts.push_back({{"ids", io.encode_query(item.prompt)},
                         {"answer", item.answer},
                         {"cloud_correct", reply && task->verify(item, *reply)}});
    }
    std::cout << nlohmann::json{{"step", step}, {"prompts", prompts}}.dump() << "\n";
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_gapg_inputs: %s\n", e.what());
  return 1;
}
