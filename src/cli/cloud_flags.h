#pragma once
// The flags every command that talks to a cloud shares (`ask`, collaborative `serve`, `eval --cloud`), and
// the one way they become a CloudClient: the model name, when not given, is asked of the cloud itself.
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cloud/cloud_client.h"
#include "collab/collaborator.h"

namespace handoff::cli {

struct CloudFlags {
  std::string url, model, api_key_env;
  double timeout_s = 60.0;
  double deadline_s = 0.0;  // 0: the client's default, at least --cloud-timeout
  int retries = 2;
};

// Adds --cloud (required when `required`), --cloud-model, --cloud-api-key-env, --cloud-timeout,
// --cloud-deadline, --cloud-retries.
CLI::Option* add_cloud_flags(CLI::App* cmd, CloudFlags& f, bool required);

// A client for f.url. Without --cloud-model, GET /models must list exactly one model (else an Error that
// names them). An unreachable cloud is an Error here, before any work starts.
std::shared_ptr<const CloudClient> make_cloud_client(const CloudFlags& f);

struct CollabFlags {
  bool fallback = false, forward_reasoning = false;
  double handoff_threshold = 1.1;
  int64_t cloud_max_tokens = 256;
  double price_in = 0, price_out = 0;  // USD per million prompt / completion tokens (the cost account)
};
void add_collab_flags(CLI::App* cmd, CollabFlags& f);
// --cloud-price-in / --cloud-price-out (USD per million tokens) for a command that reports a run's cloud
// bill.
void add_price_flags(CLI::App* cmd, CollabFlags& f);

// The collaborative system of `ask`, `eval --cloud` and the collaborative `serve`: `device` decodes as
// `decoding` says (temperature, max_new_tokens), with the collaborative flags `f` on top; hand-offs go to
// `cloud` (from make_cloud_client, made first so that an unreachable cloud fails before any model loads).
std::shared_ptr<Collaborator> make_collaborator(std::shared_ptr<LoadedModel> device,
                                                std::shared_ptr<const CloudClient> cloud,
                                                const CollabFlags& f, CollabOptions decoding = {});

// The device behind an OpenAI-compatible server instead of a checkpoint (`serve` and `ask`): --device-url,
// --device-model, --device-api-key-env, --device-timeout, --device-retries, --device-handoff-token-id.
struct DeviceServerFlags {
  std::string url, model, api_key_env;
  double timeout_s = 60.0;
  int retries = 1;
  int handoff_token_id = -1;  // -1: asked of the server's /tokenize when --fallback needs it
};
CLI::Option* add_device_server_flags(CLI::App* cmd, DeviceServerFlags& f);
// A Collaborator whose device is the server at d.url (checked like the cloud: reachable, one model or
// --device-model), spoken to by `protocol` ("" → the embedded default).
std::shared_ptr<Collaborator> make_remote_collaborator(const DeviceServerFlags& d,
                                                       const std::string& protocol,
                                                       std::shared_ptr<const CloudClient> cloud,
                                                       const CollabFlags& f, CollabOptions decoding = {});

}  // namespace handoff::cli
