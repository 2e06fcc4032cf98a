// `handoff eval`: a model alone on the held-out split, per difficulty; with --cloud, also the collaborative
// system (device + real cloud over HTTP): its accuracy and cloud-call rate. With --device-url instead of
// --model, the collaborative system whose device runs behind an OpenAI-compatible server (issue 20).
#include <cmath>
#include <cstdio>

#include "cli/cloud_flags.h"
#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/protocol_flag.h"
#include "cli/thread_flag.h"
#include "cli/weights_flag.h"
#include "collab/cloud_answers.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/base_eval.h"
#include "eval/collab_eval.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {
struct EvalArgs {
  std::string model, task = "chain", json_out, device = "cpu";
  std::vector<int> difficulties;
  int64_t n = 100, max_new_tokens = 96;
  double temperature = 1.0;
  int64_t seed = 1234;
  int threads = 0;
  bool no_handoff = false;
  std::string split = "test";
  std::string precision = "fp32", protocol, weights = "fp32";
  CloudFlags cloud;
  CollabFlags collab;
  DeviceServerFlags device_server;
};

// The collaborative run on the held-out items: its table printed, its JSON and the cloud bill returned.
nlohmann::json eval_collab(Collaborator& collab, const Task& task, const BaseEvalOptions& o,
                           const EvalArgs& a, const std::string& device_name) {
  auto cstats = evaluate_collab(collab, task, o.difficulties, a.n, o.seed, o.split);
  std::printf("\ncollaborative: device %s + cloud %s (model '%s'), greedy device decisions\n\n%s",
              device_name.c_str(), a.cloud.url.c_str(), a.cloud.model.c_str(),
              collab_eval_table(cstats).c_str());
  // The run's cloud bill: the "all" row's per-query means times the queries.
  const CollabStats& all = cstats.back();
  const double n = static_cast<double>(all.n);
  CloudUsage usage{std::llround(all.call_rate * n), std::llround(all.cloud_prompt_tokens * n),
                   std::llround(all.cloud_tokens * n)};
  const double cost = usage.cost_usd(a.collab.price_in, a.collab.price_out);
  const auto no_answer = std::llround(all.cloud_no_answer * static_cast<double>(all.n));
  std::printf(
      "\ncloud usage: %lld calls, %lld prompt + %lld completion tokens, $%.4f; %lld replies had no "
      "answer in any form (counted wrong)\n",
      static_cast<long long>(usage.calls), static_cast<long long>(usage.prompt_tokens),
      static_cast<long long>(usage.completion_tokens), cost, static_cast<long long>(no_answer));
  return {{"collaborative", collab_eval_json(cstats)},
          {"cloud_usage",
           {{"calls", usage.calls},
            {"prompt_tokens", usage.prompt_tokens},
            {"completion_tokens", usage.completion_tokens},
            {"cost_usd", cost},
            {"no_answer", no_answer}}}};
}

void check_eval_args(const EvalArgs& a) {
  if (a.model.empty() == a.device_server.url.empty())
    throw Error("eval needs the model: --model DIR or --device-url URL (one of them)");
  if (!a.device_server.url.empty() && a.cloud.url.empty())
    throw Error("--device-url evaluates the collaborative system: it needs --cloud URL",
                "to evaluate a checkpoint alone, give --model DIR");
  if (a.no_handoff && !(a.cloud.url.empty() && a.device_server.url.empty()))
    throw Error("--no-handoff evaluates the device alone; with a cloud there would be nothing to send",
                "drop --cloud/--device-url, or drop --no-handoff");
  if (a.no_handoff && a.collab.handoff_threshold <= 1.0)
    throw Error("--no-handoff and --handoff-threshold contradict each other", "give one of them");
  if (!a.device_server.url.empty() && a.weights != "fp32")
    throw Error("--weights applies to a model loaded here (--model DIR), not to a device server");
}
}  // namespace

void register_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "Evaluate a model on the held-out split: accuracy and hand-off rate per difficulty");
  auto* model_opt = cmd->add_option("--model", a->model,
                                    "Checkpoint directory (e.g. runs/device/model or models/device-chain)");
  add_device_server_flags(cmd, a->device_server)->excludes(model_opt);
  cmd->add_option("--task", a->task, "Task: chain | countdown | wordmath | carry | hops")
      ->capture_default_str();
  cmd->add_option("--difficulties", a->difficulties, "Difficulties to evaluate (default: the task's range)")
      ->delimiter(',');
  cmd->add_option("--n", a->n, "Problems per difficulty")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--sample-temperature", a->temperature, "Temperature of the sampled pass (0 = skip)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Generation limit")->check(CLI::Range(1, 4096));
  cmd->add_option("--seed", a->seed, "Seed of the evaluation set")->capture_default_str();
  cmd->add_option(
      "--json", a->json_out,
      "Also write the results as JSON to this file (with --cloud: {\"device\": …, \"collaborative\": …, "
      "\"cloud_usage\": …}; with --device-url: no \"device\")");
  cmd->add_option("--device", a->device, "cpu | cuda")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Compute threads (0 = by the model's width: `handoff info`)");
  add_precision_flag(cmd, a->precision);
  add_weights_flag(cmd, a->weights);
  add_protocol_flag(cmd, a->protocol);
  cmd->add_option(
         "--split", a->split,
         "test: the held-out split; train: items of the training distribution at --seed (validation, "
         "for choosing a recipe without touching held-out items)")
      ->check(CLI::IsMember({"test", "train"}))
      ->capture_default_str();
  cmd->add_flag("--no-handoff", a->no_handoff,
                "Decode the device with its " + std::string(kHandoffMarker) +
                    " token masked: what it solves by itself (device alone; not with --cloud)");
  add_cloud_flags(cmd, a->cloud, /*required=*/false)
      ->description(
          "Also evaluate the collaborative system: the device's hand-offs go to this OpenAI-compatible cloud "
          "(e.g. http://127.0.0.1:8080/v1)");
  add_collab_flags(cmd, a->collab);
  add_price_flags(cmd, a->collab);
  cmd->callback([a] {
    check_eval_args(*a);
    setup_threads_for(a->threads, a->model);
    apply_precision(a->precision);
    // An unreachable cloud is an error before any evaluation work.
    std::shared_ptr<const CloudClient> cloud;
    if (!a->cloud.url.empty()) {
      cloud = make_cloud_client(a->cloud);
      a->cloud.model = cloud->options().model;
    }
    auto task = make_task(a->task);
    BaseEvalOptions o;
    o.n_per_difficulty = a->n;
    o.sample_temperature = a->temperature;
    o.max_new_tokens = a->max_new_tokens;
    o.seed = static_cast<uint64_t>(a->seed);
    o.difficulties = resolve_difficulties(*task, a->difficulties);
    o.handoff_threshold = a->collab.handoff_threshold;  // the knob decides in the device-alone table too
    o.ban_handoff = a->no_handoff;
    o.split = a->split == "train" ? Split::kTrain : Split::kTest;
    CollabOptions decoding;
    decoding.max_new_tokens = a->max_new_tokens;
    nlohmann::json out;
    if (!a->device_server.url.empty()) {  // the device is a server: the collaborative system only
      const auto collab = make_remote_collaborator(a->device_server, a->protocol, cloud, a->collab, decoding);
      out = eval_collab(*collab, *task, o, *a, a->device_server.url);
    } else {
      auto loaded = load_checkpoint(a->model, a->device);
      apply_protocol_flag(loaded, a->protocol);
      apply_weights(loaded, a->weights);
      auto stats = evaluate_base(loaded.model, {*loaded.tokenizer, loaded.protocol}, *task, o);
      std::printf("%s on %s (%s split, %lld per difficulty, sampled at T=%.2f%s)\n\n%s", a->model.c_str(),
                  task->name().c_str(), a->split == "train" ? "train" : "held-out",
                  static_cast<long long>(a->n), a->temperature, a->no_handoff ? "; hand-off banned" : "",
                  base_eval_table(stats).c_str());
      out = base_eval_json(stats);
      if (cloud) {
        const auto collab =
            make_collaborator(std::make_shared<LoadedModel>(std::move(loaded)), cloud, a->collab, decoding);
        nlohmann::json c = eval_collab(*collab, *task, o, *a, a->model);
        c["device"] = std::move(out);
        out = std::move(c);
      }
    }
    if (!a->json_out.empty()) write_file_atomic(a->json_out, out.dump(2) + "\n");
  });
}

}  // namespace handoff::cli
