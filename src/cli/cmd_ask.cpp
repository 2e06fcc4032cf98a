// `handoff ask`: one query through collaborative inference — the device answers or hands off to the cloud.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/cloud_flags.h"
#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/protocol_flag.h"
#include "cli/thread_flag.h"
#include "cli/weights_flag.h"
#include "common/error.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {
struct AskArgs {
  std::string device, question, compute = "cpu";
  CloudFlags cloud;
  CollabFlags collab;
  DeviceServerFlags device_server;
  double temperature = 0.0;
  int64_t max_new_tokens = 96, seed = 0;
  int threads = 1;
  std::string precision = "fp32", protocol, weights = "fp32";
  bool verbose = false, json = false;
};
}  // namespace

void register_ask(CLI::App& app) {
  auto a = std::make_shared<AskArgs>();
  auto* cmd = app.add_subcommand(
      "ask", "Ask one question: the device model answers, or hands off to the cloud (prints who answered)");
  auto* device_opt = cmd->add_option("--device", a->device,
                                     "Device checkpoint directory (post-trained with `handoff train`)")
                         ->check(CLI::ExistingDirectory);
  add_device_server_flags(cmd, a->device_server)->excludes(device_opt);
  add_cloud_flags(cmd, a->cloud, /*required=*/true);
  add_collab_flags(cmd, a->collab);
  cmd->add_option("question", a->question, "The query, as the device model's task prompt")->required();
  cmd->add_option("--temperature", a->temperature, "Device sampling temperature (0 = greedy)")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "Device generation limit")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Sampling seed (with --temperature > 0)")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Compute threads (0 = by the model's width: `handoff info`)")
      ->capture_default_str();
  add_precision_flag(cmd, a->precision);
  add_weights_flag(cmd, a->weights);
  add_protocol_flag(cmd, a->protocol);
  cmd->add_option("--compute", a->compute, "cpu | cuda (where the device model runs)")->capture_default_str();
  cmd->add_flag("-v,--verbose", a->verbose,
                "Also print the device's reasoning, tokens and latency of each side");
  cmd->add_flag("--json", a->json, "Print the whole result as one JSON object");
  cmd->callback([a] {
    setup_threads_for(a->threads, a->device);
    apply_precision(a->precision);
    if (a->device.empty() == a->device_server.url.empty())
      throw Error("ask needs the device: --device DIR or --device-url URL (one of them)");
    if (a->weights != "fp32" && a->device.empty())
      throw Error("--weights applies to a device loaded here (--device DIR), not to a device server");
    auto cloud = make_cloud_client(a->cloud);
    CollabOptions decoding;
    decoding.temperature = a->temperature;
    decoding.max_new_tokens = a->max_new_tokens;
    std::shared_ptr<Collaborator> collab;
    if (a->device.empty()) {
      collab = make_remote_collaborator(a->device_server, a->protocol, cloud, a->collab, decoding);
    } else {
      auto device = std::make_shared<LoadedModel>(load_checkpoint(a->device, a->compute));
      apply_protocol_flag(*device, a->protocol);
      apply_weights(*device, a->weights);
      collab = make_collaborator(device, cloud, a->collab, decoding);
    }
    const CollabResult r = collab->answer(a->question, static_cast<uint64_t>(a->seed));
    const std::string by = answered_by_name(r.answered_by);
    if (a->json) {
      nlohmann::json j = {{"answered_by", by},
                          {"answer", r.answer},
                          {"text", r.text},
                          {"device_text", r.device_text},
                          {"called_cloud", r.called_cloud},
                          {"device_tokens", r.device_tokens},
                          {"cloud_prompt_tokens", r.cloud_prompt_tokens},
                          {"cloud_tokens", r.cloud_tokens},
                          {"device_ms", r.device_ms},
                          {"cloud_ms", r.cloud_ms}};
      if (!r.cloud_error.empty()) j["cloud_error"] = r.cloud_error;
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    if (a->verbose) {
      std::printf("device (%lld tokens, %.1f ms):\n%s\n", static_cast<long long>(r.device_tokens),
                  r.device_ms, r.device_text.c_str());
      if (r.called_cloud)
        std::printf(
            "\ncloud %s (%lld tokens, %.1f ms):\n%s\n", cloud->options().model.c_str(),
            static_cast<long long>(r.cloud_tokens), r.cloud_ms,
            r.answered_by == AnsweredBy::kCloud ? r.text.c_str() : ("failed: " + r.cloud_error).c_str());
      std::printf("\n");
    }
    std::printf("answer: %s\n", r.answer.empty() ? ("(none) " + r.text).c_str() : r.answer.c_str());
    std::printf("answered by: %s\n", by.c_str());
    if (r.answered_by == AnsweredBy::kDeviceFallback)
      std::fprintf(stderr, "warning: the cloud failed (%s); this is the device's own answer\n",
                   r.cloud_error.c_str());
  });
}

}  // namespace handoff::cli
