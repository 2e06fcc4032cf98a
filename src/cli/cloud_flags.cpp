#include "cli/cloud_flags.h"

#include "common/error.h"
#include "protocol/response.h"

namespace handoff::cli {

CLI::Option* add_cloud_flags(CLI::App* cmd, CloudFlags& f, bool required) {
  auto* url = cmd->add_option("--cloud", f.url,
                              "OpenAI-compatible base URL of the cloud, e.g. http://127.0.0.1:8080/v1");
  if (required) url->required();
  cmd->add_option("--cloud-model", f.model, "Model name sent to the cloud (default: the one it lists)");
  cmd->add_option("--cloud-api-key-env", f.api_key_env,
                  "Environment variable holding the cloud's API key (the key itself is never printed)");
  cmd->add_option("--cloud-timeout", f.timeout_s, "Seconds to wait for one cloud reply")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--cloud-deadline", f.deadline_s,
                  "Seconds one cloud call may take in all: connect, every read, every retry and backoff "
                  "(default: the larger of 90 and --cloud-timeout)")
      ->check(CLI::Range(0.1, 36000.0));
  cmd->add_option("--cloud-retries", f.retries, "Retries on connection errors, 429 and 5xx")
      ->check(CLI::Range(0, 10))
      ->capture_default_str();
  return url;
}

namespace {

// A client for an OpenAI-compatible server (`what`: "the cloud" or "the device server"), reachable now,
// with the model named by `model_flag` or the one it lists.
std::shared_ptr<const CloudClient> make_api_client(const CloudFlags& f, const std::string& what,
                                                   const std::string& model_flag) {
  CloudClientOptions co = cloud_client_options(f.url, f.model, f.api_key_env, f.timeout_s, f.retries);
  if (f.deadline_s > 0) co.deadline_s = f.deadline_s;
  auto client = std::make_shared<CloudClient>(co);
  std::vector<std::string> models;
  try {
    models = client->models();
  } catch (const Error& e) {
    throw Error("cannot reach " + what + " at " + f.url + ": " + e.what());
  }
  if (!f.model.empty()) return client;
  if (models.size() != 1) {
    std::string names;
    for (const auto& m : models) names += (names.empty() ? "" : ", ") + m;
    throw Error(what + " at " + f.url + " serves " + std::to_string(models.size()) + " models (" + names +
                    "); say which",
                "pass " + model_flag + " NAME");
  }
  co.model = models.front();
  return std::make_shared<CloudClient>(co);
}

}  // namespace

std::shared_ptr<const CloudClient> make_cloud_client(const CloudFlags& f) {
  return make_api_client(f, "the cloud", "--cloud-model");
}

CLI::Option* add_device_server_flags(CLI::App* cmd, DeviceServerFlags& f) {
  auto* url = cmd->add_option("--device-url", f.url,
                              "OpenAI-compatible base URL of a server running the device model (llama.cpp's "
                              "llama-server on `handoff export-gguf`'s file, vLLM, `handoff serve --model`), "
                              "instead of --device DIR; its hand-off is read from the reply text");
  cmd->add_option("--device-model", f.model,
                  "Model name sent to the device server (default: the one it lists)");
  cmd->add_option("--device-api-key-env", f.api_key_env,
                  "Environment variable holding the device server's API key (never printed)");
  cmd->add_option("--device-timeout", f.timeout_s, "Seconds to wait for one device server reply")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--device-retries", f.retries, "Retries on connection errors, 429 and 5xx")
      ->check(CLI::Range(0, 10))
      ->capture_default_str();
  cmd->add_option("--device-handoff-token-id", f.handoff_token_id,
                  "The id of the device's " + std::string(kHandoffMarker) +
                      " token on the device server, for --fallback (default: asked of its /tokenize)")
      ->check(CLI::Range(0, 1 << 30));
  return url;
}

std::shared_ptr<Collaborator> make_remote_collaborator(const DeviceServerFlags& d,
                                                       const std::string& protocol,
                                                       std::shared_ptr<const CloudClient> cloud,
                                                       const CollabFlags& f, CollabOptions decoding) {
  CloudFlags as_client;
  as_client.url = d.url;
  as_client.model = d.model;
  as_client.api_key_env = d.api_key_env;
  as_client.timeout_s = d.timeout_s;
  as_client.retries = d.retries;
  decoding.fallback = f.fallback;
  decoding.forward_reasoning = f.forward_reasoning;
  decoding.handoff_threshold = f.handoff_threshold;
  decoding.cloud_max_tokens = f.cloud_max_tokens;
  const Protocol p = load_protocol(protocol.empty() ? "handoff" : protocol);
  // Options the device server cannot honour fail before it is contacted.
  Collaborator::check_remote_options(decoding, /*handoff_token_known=*/true);
  auto server = make_api_client(as_client, "the device server", "--device-model");
  int handoff_token = d.handoff_token_id;
  if (decoding.fallback && p.handoff_is_token() && handoff_token < 0)
    handoff_token = remote_handoff_token(*server);
  return std::make_shared<Collaborator>(std::move(server), p, std::move(cloud), decoding, handoff_token);
}

void add_collab_flags(CLI::App* cmd, CollabFlags& f) {
  cmd->add_flag("--fallback", f.fallback,
                "When the cloud fails after a hand-off, answer on the device (flagged as device-fallback) "
                "instead of failing");
  cmd->add_flag("--forward-reasoning", f.forward_reasoning,
                "Send the device's reasoning before the hand-off to the cloud too (default: the query only)");
  cmd->add_option("--handoff-threshold", f.handoff_threshold,
                  "Deployment knob: hand off exactly where the device gives P(" +
                      std::string(kHandoffMarker) +
                      ") >= this (0-1; lower means more calls; default off: the device's own decoding "
                      "decides)")
      ->check(
          CLI::Range(0.0, 1.0));  // above 1 is the unset default (collab/collaborator.h): not a value to type
  cmd->add_option("--cloud-max-tokens", f.cloud_max_tokens, "max_tokens of a request to the cloud")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
}

void add_price_flags(CLI::App* cmd, CollabFlags& f) {
  cmd->add_option("--cloud-price-in", f.price_in,
                  "USD per million prompt tokens the cloud bills (for the cost line; 0: not priced)")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--cloud-price-out", f.price_out, "USD per million completion tokens the cloud bills")
      ->check(CLI::Range(0.0, 1e6));
}

std::shared_ptr<Collaborator> make_collaborator(std::shared_ptr<LoadedModel> device,
                                                std::shared_ptr<const CloudClient> cloud,
                                                const CollabFlags& f, CollabOptions decoding) {
  decoding.fallback = f.fallback;
  decoding.forward_reasoning = f.forward_reasoning;
  decoding.handoff_threshold = f.handoff_threshold;
  decoding.cloud_max_tokens = f.cloud_max_tokens;
  return std::make_shared<Collaborator>(std::move(device), std::move(cloud), decoding);
}

}  // namespace handoff::cli
