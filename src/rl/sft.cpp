#include "rl/sft.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "collab/device_run.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "dist/world.h"
#include "io/checkpoint.h"
#include "model/logprobs.h"
#include "protocol/response.h"
#include "rl/lr_schedule.h"
#include "rl/metrics_log.h"
#include "rl/sft_batch.h"
#include "rl/trainer_state.h"
#include "runtime/data_threads.h"
#include "runtime/runtime.h"
#include "tasks/task.h"
#include "tokenizer/char_tokenizer.h"
#include "tokenizer/protocol_fit.h"

namespace handoff {

std::string sft_target(const Protocol& protocol, const std::string& solution, bool handoff,
                       std::mt19937_64& rng) {
  const auto answer_at = solution.rfind(kAnswerPrefix);
  std::string reasoning = answer_at == std::string::npos ? solution : solution.substr(0, answer_at);
  if (!handoff) {
    if (protocol.answer == AnswerForm::kAnswerLine && !protocol.think) return solution;  // the task's own
    std::string answer =
        answer_at == std::string::npos ? "" : solution.substr(answer_at + kAnswerPrefix.size());
    const size_t b = answer.find_first_not_of(" \t\n"), e = answer.find_last_not_of(" \t\n");
    answer = b == std::string::npos ? "" : answer.substr(b, e - b + 1);
    return protocol.solution_text(reasoning, answer);
  }
  // Steps are the space-separated pieces before "Answer:"; keep a random number of them (0..all), so the
  // format also covers calling for help early (the paper's learned early exit).
  std::vector<std::string> steps;
  std::istringstream in(reasoning);
  for (std::string s; in >> s;) steps.push_back(s);
  std::uniform_int_distribution<size_t> pick(0, steps.size());
  const size_t keep = pick(rng);
  std::string out;
  for (size_t i = 0; i < keep; ++i) out += steps[i] + " ";
  return protocol.handoff_text(out);
}

namespace {

// This rank's rows of a batch: a contiguous share of ⌈B/W⌉ or ⌊B/W⌋ rows (issue 19). Every rank builds the
// whole batch (it depends on (seed, step) alone), so the split needs no communication.
SftBatch shard(SftBatch b, const World& world) {
  if (!world.distributed()) return b;
  const auto B = static_cast<int64_t>(b.prompts.size());
  const int64_t W = world.size(), r = world.rank();
  const int64_t lo = B * r / W, hi = B * (r + 1) / W;
  SftBatch mine;
  mine.tokens = b.tokens;  // the throughput counts the whole batch
  for (int64_t i = lo; i < hi; ++i) {
    mine.prompts.push_back(std::move(b.prompts[i]));
    mine.completions.push_back(std::move(b.completions[i]));
  }
  return mine;
}

// Ranks must train the same run: the options, the resume point and the world's own view of it.
void check_ranks_agree(World& world, const SftOptions& o, const ModelConfig& cfg, int64_t start_step,
                       const std::string& resumed_dir) {
  if (!world.distributed()) return;
  nlohmann::json j = {{"options", o.to_json()},
                      {"model", cfg.to_json()},
                      {"resume_step", start_step},
                      {"checkpoint", checkpoint_fingerprint(resumed_dir)}};
  j["options"].erase("quiet");
  world.require_same("options or checkpoint", j.dump());
  if (o.batch_size < world.size())  // the same on every rank now: every rank stops here alike
    throw Error("--batch-size " + std::to_string(o.batch_size) + " is smaller than the world size " +
                std::to_string(world.size()) + ": some rank would have no rows");
}

// The AdamW groups: decay on matrices only; norms and biases are not regularised.
std::vector<torch::optim::OptimizerParamGroup> param_groups(CausalLM& model, const SftOptions& o) {
  std::vector<at::Tensor> decay, no_decay;
  for (auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay,
                      std::make_unique<torch::optim::AdamWOptions>(
                          torch::optim::AdamWOptions(o.lr).betas({0.9, 0.98}).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(o.lr).betas({0.9, 0.98}).weight_decay(0.0)));
  return groups;
}

// One optimiser step on this rank's rows `b` (in length micro-batches with --update-tokens); returns the
// whole batch's loss (summed over ranks) and adds the tokens computed and the real ones to the counters.
double sft_update(CausalLM& model, torch::optim::Optimizer& opt, SftBatch b, const SftOptions& o,
                  World& world, int64_t& computed_tokens, int64_t& real_tokens) {
  // Over the whole batch's completion tokens, so that the gradients of micro-batches and of ranks sum to
  // the batch's.
  double completion_tokens = 0;
  for (const auto& c : b.completions) completion_tokens += static_cast<double>(c.size());
  const double n_tokens = world.sum(completion_tokens);
  opt.zero_grad();
  // The micro-batches (--update-tokens), or the whole batch; with data threads and no micro-batches, one
  // share of the rows per thread. The threads' gradients are added in part order (runtime/data_threads.h).
  std::vector<SftBatch> parts = o.update_tokens <= 0 && o.data_threads > 1
                                    ? thread_shares(std::move(b), o.data_threads)
                                    : length_parts(std::move(b), o.update_tokens);
  for (const SftBatch& part : parts) {
    computed_tokens += padded_tokens(part);
    real_tokens += real_tokens_of(part);
  }
  const double loss_value = backward_in_order(
      parts.size(), o.data_threads,
      [&](size_t k) {
        // One sequence per row: an SFT batch's random items rarely share a prompt, and the shared-prompt
        // pass (the policy update's) sums in another order where they do — which alone moved the reference
        // device off its bytes on the recipe's learning knee (models/device-chain/README.md).
        auto lp = completion_logprobs(model, parts[k].prompts, parts[k].completions, PromptPass::kPerRow);
        return -(lp.token_logprobs.sum() / at::scalar_tensor(n_tokens, lp.mask.options()));
      },
      model->parameters());
  all_reduce_gradients(world, model->parameters());
  if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
  opt.step();
  return world.sum(loss_value);
}

// A resumed run saved by another number of processes says so (the same batches, summed in another order).
void note_world_size_change(const World& world, const std::string& model_dir, const SftOptions& o) {
  const int64_t was = read_trainer_state(model_dir).value("world_size", int64_t{1});
  if (was != world.size() && !o.quiet)
    std::fprintf(stderr,
                 "sft: resuming a run saved by %lld process(es) on %d: the same global batches, summed in "
                 "another order\n",
                 static_cast<long long>(was), world.size());
}

}  // namespace

SftResult run_sft(const ModelConfig& model_config, const SftOptions& o, const std::string& out_dir,
                  bool resume) {
  o.validate();
  auto task = make_task(o.task);
  const std::vector<int> mix = resolve_difficulties(*task, o.difficulties);

  CharTokenizer tok;
  World& world = World::instance();
  const std::string model_dir = out_dir + "/model";
  make_dirs(out_dir);
  CausalLM model{nullptr};
  int64_t start_step = 0;
  // Rank 0 completes an interrupted save; the others read what it leaves.
  bool resuming = world.main() && resume && prepare_resume(model_dir);
  resuming = world.broadcast_bytes(resuming ? "1" : "0") == "1";
  // A resumed run keeps the protocol it was started with; naming another is an error.
  Protocol protocol = !o.protocol.empty() ? load_protocol(o.protocol)
                      : resuming          ? recorded_protocol(model_dir)
                                          : Protocol{};
  if (resuming) {
    start_step = read_trainer_state(model_dir).at("step").get<int64_t>();
    model = load_checkpoint(model_dir, o.device).model;
    const Protocol recorded = recorded_protocol(model_dir);
    if (recorded.to_json_text() != protocol.to_json_text())
      throw Error("cannot resume " + out_dir + " with protocol \"" + protocol.name +
                  "\": it was trained with \"" + recorded.name + "\" (" + model_dir + "/" + kProtocolFile +
                  ")");
  } else {
    torch::manual_seed(o.seed);
    auto cfg = model_config;
    cfg.vocab_size = std::max<int64_t>(cfg.vocab_size, tok.vocab_size());
    model = CausalLM(cfg);
    model->to(compute_device(o.device));
  }
  model->train();
  check_ranks_agree(world, o, model->config, start_step, resuming ? model_dir : "");
  if (resuming && world.main()) note_world_size_change(world, model_dir, o);
  {  // every rank starts from rank 0's weights (a resumed or freshly seeded model alike)
    torch::NoGradGuard no_grad;
    world.broadcast(model->parameters());
  }
  check_protocol_fits(protocol, tok);
  if (world.main()) write_file_atomic(out_dir + "/" + kProtocolFile, protocol.to_json_text());
  const DeviceSpeech io{tok, protocol};

  torch::optim::AdamW opt(param_groups(model, o));
  if (start_step > 0) load_optimizer_state(model_dir, opt);

  std::optional<MetricsLog> log;  // rank 0 alone writes metrics and checkpoints
  if (world.main()) log.emplace(out_dir + "/metrics.jsonl", start_step);
  LrSchedule schedule{o.lr, o.warmup_steps, o.steps, o.min_lr_ratio};
  auto save = [&](int64_t step) {
    if (!world.main()) return;
    save_training_checkpoint(
        model_dir, model, tok, protocol,
        {{"step", step}, {"kind", "sft"}, {"options", o.to_json()}, {"world_size", world.size()}}, opt);
  };

  SftResult res;
  res.steps_done = start_step;
  auto t0 = std::chrono::steady_clock::now();
  const double comm0 = world.comm_seconds();
  int64_t tokens = 0, computed_tokens = 0, real_tokens = 0;
  double loss_acc = 0;
  int64_t loss_n = 0;
  // A run that already reached its stop step (a resumed time-boxed run) is finished, like one past o.steps.
  const int64_t end_step = o.stop_at_step > 0 ? std::min(o.steps, o.stop_at_step) : o.steps;
  for (int64_t step = start_step; step < end_step; ++step) {
    const double lr = schedule(step);
    for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    SftBatch b = shard(make_sft_batch(*task, io, o, mix, step), world);
    tokens += b.tokens;
    loss_acc += sft_update(model, opt, std::move(b), o, world, computed_tokens, real_tokens);
    ++loss_n;
    res.steps_done = step + 1;
    const bool last = step + 1 == o.steps;
    if ((step + 1) % o.log_every == 0 || last) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double done = static_cast<double>(step + 1 - start_step);
      const double eta = secs / done * static_cast<double>(o.steps - step - 1);
      res.final_loss = loss_acc / loss_n;
      res.tokens_per_s = tokens / secs;
      nlohmann::json line = {{"step", step + 1},
                             {"loss", res.final_loss},
                             {"lr", lr},
                             {"tokens_per_s", res.tokens_per_s},
                             {"steps_per_s", done / secs}};
      // What share of the tokens computed was padding (this rank's; issue 18).
      line["padding_fraction"] =
          1.0 - static_cast<double>(real_tokens) / static_cast<double>(computed_tokens);
      // The share of the time spent in collectives, waiting included (issue 19's benchmark).
      if (world.distributed()) line["comm_fraction"] = (world.comm_seconds() - comm0) / secs;
      if (log) log->write(line);
      if (!o.quiet && world.main())
        std::fprintf(stderr,
                     "sft %s step %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  %.1f steps/s  ETA %.0fs\n",
                     o.task.c_str(), static_cast<long long>(step + 1), static_cast<long long>(o.steps),
                     res.final_loss, lr, res.tokens_per_s, done / secs, eta);
      loss_acc = 0;
      loss_n = 0;
    }
    const bool interrupted = o.stop_at_step > 0 && step + 1 >= o.stop_at_step;
    if ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || last || interrupted)
      save(step + 1);
    if (interrupted) break;
  }
  world.barrier();  // the other ranks exit once rank 0's last checkpoint is written
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (res.steps_done == start_step && start_step > 0 && !o.quiet)
    std::fprintf(stderr, "sft: %s already finished %lld steps\n", model_dir.c_str(),
                 static_cast<long long>(start_step));
  return res;
}

}  // namespace handoff
