// `handoff serve`: an OpenAI-compatible HTTP endpoint. `--model DIR` serves one checkpoint (the cloud model
// of the demo: LocalModelResponder); `--device DIR --cloud URL` serves the collaborative system (the device
// answers or hands off to the cloud: CollabResponder). Same HTTP layer (ModelServer) for both.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/cloud_flags.h"
#include "cli/commands.h"
#include "cli/precision_flag.h"
#include "cli/protocol_flag.h"
#include "cli/thread_flag.h"
#include "cli/weights_flag.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "collab/collab_responder.h"
#include "common/error.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {

struct ServeArgs {
  std::string model, device, model_name, host = "127.0.0.1", api_key_env, compute = "cpu";
  std::string precision = "fp32", protocol, weights = "fp32";
  int port = 8080, threads = 0, http_threads = 8, max_batch = 16, cloud_slots = 4;
  int64_t max_tokens_limit = 1024, default_max_tokens = 128;
  size_t max_body_bytes = 1 << 20, max_queued = 256, max_connections = 1024;
  double header_timeout_s = 10, body_timeout_s = 30, drain_timeout_s = 60;
  int64_t call_rate_window = 200;
  double max_call_rate = -1;  // the budget guard's target; < 0: no guard
  CloudFlags cloud;
  CollabFlags collab;
  DeviceServerFlags device_server;  // --device-url instead of --device
  bool collaborative() const { return !device.empty() || !device_server.url.empty(); }
};

// SIGINT/SIGTERM → a byte on this pipe (write() is async-signal-safe); a watcher thread reads it and calls
// ModelServer::stop(), which is not safe inside a handler. A handler (not a blocked mask) because libraries
// start threads (OpenBLAS) before main runs, and a signal may land on any of them.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
  const int saved = errno;
  const char c = static_cast<char>(sig);
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
  errno = saved;
}

void install_stop_handlers() {
  if (pipe(g_signal_pipe) != 0) throw Error("cannot create the signal pipe");
  fcntl(g_signal_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Blocks until a stop signal (→ server.stop(), returns true) or a 0 byte from main (→ false). The cloud's
// calls in flight are cancelled first, so that a hung cloud cannot hold the shutdown.
bool wait_for_stop_signal(ModelServer& server, const CloudClient* cloud) {
  char c = 0;
  ssize_t n;
  do {
    n = read(g_signal_pipe[0], &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n != 1 || c == 0) return false;
  signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
  signal(SIGTERM, SIG_DFL);
  std::fprintf(stderr, "handoff serve: %s received, finishing requests in flight (queued ones get 503)\n",
               c == SIGINT ? "SIGINT" : "SIGTERM");
  if (cloud) cloud->cancel();
  server.stop();
  return true;
}

// The serving-bound flags: workers, batching, cloud slots, queue and connection limits, client deadlines.
void add_load_flags(CLI::App* cmd, ServeArgs& a) {
  cmd->add_option("--http-threads", a.http_threads,
                  "Worker threads for generation requests (model calls run one at a time; connections, "
                  "/health and /v1/models are served by one I/O thread and never wait for them)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-batch", a.max_batch,
                  "Most sequences decoding at once: concurrent requests share each forward pass and join "
                  "or leave between tokens (continuous batching; the device's decodes with --device; 1 = one "
                  "request at a time)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option(
         "--cloud-slots", a.cloud_slots,
         "--device only: cloud calls in flight at once; a hand-off past them gets 503 (or the flagged "
         "fallback) at once, so a hung cloud holds at most this many --http-threads (0 = no limit)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  cmd->add_option("--max-queued", a.max_queued, "Generation requests waiting for a worker (more → 503)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--max-connections", a.max_connections, "Open connections (more → 503)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--header-timeout", a.header_timeout_s,
                  "Seconds a client has to send a whole request header")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout", a.body_timeout_s, "Seconds a client has to send a whole request body")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--drain-timeout", a.drain_timeout_s,
                  "On SIGTERM: seconds requests being computed may take to finish (queued ones get 503)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd->add_option("--call-rate-window", a.call_rate_window,
                  "--device only: collaborative decisions GET /metrics' rolling call rate counts")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--max-call-rate", a.max_call_rate,
                  "--device only: the budget guard holds the rolling call rate (over --call-rate-window "
                  "decisions) at this rate by moving the hand-off threshold; it starts from "
                  "--handoff-threshold (default 0.5), and each decision says whether the guard changed it")
      ->check(CLI::Range(0.0, 1.0));
}

// The budget guard of `--max-call-rate` (collab/pure/budget_guard.h); null without one.
std::shared_ptr<BudgetGuard> make_guard(const ServeArgs& a) {
  if (a.max_call_rate < 0) return nullptr;
  BudgetGuardOptions g;
  g.target = a.max_call_rate;
  g.window = a.call_rate_window;
  if (a.collab.handoff_threshold <= 1.0) g.base_threshold = a.collab.handoff_threshold;
  if (!(g.base_threshold > 0))
    throw Error("--max-call-rate starts from --handoff-threshold, which must then be above 0",
                "drop --handoff-threshold 0 (every query would go to the cloud whatever the guard said)");
  check_budget_guard(g);
  return std::make_shared<BudgetGuard>(g);
}

ServerOptions server_options(const ServeArgs& a) {
  ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.max_body_bytes = a.max_body_bytes;
  so.http_threads = a.http_threads;
  so.max_queued = a.max_queued;
  so.max_connections = a.max_connections;
  so.header_timeout_s = a.header_timeout_s;
  so.body_timeout_s = a.body_timeout_s;
  so.drain_timeout_s = a.drain_timeout_s;
  so.call_rate_window = a.call_rate_window;
  so.call_rate_target = a.max_call_rate;
  so.limits.max_tokens_limit = a.max_tokens_limit;
  so.limits.default_max_tokens = std::min(a.default_max_tokens, a.max_tokens_limit);
  if (!a.api_key_env.empty()) {
    const char* key = std::getenv(a.api_key_env.c_str());
    if (!key || !*key)
      throw Error("--api-key-env " + a.api_key_env + ": the variable is not set or empty",
                  "export " + a.api_key_env + "=<key> first");
    so.api_key = key;
  }

  return so;
}

// The collaborative endpoint: the device from --device DIR or behind --device-url, the cloud from --cloud
// (both reachable before anything listens).
std::shared_ptr<Responder> collab_responder(const ServeArgs& a, const std::shared_ptr<BudgetGuard>& guard,
                                            const std::string& name, const std::string& key_note,
                                            std::shared_ptr<const CloudClient>& cloud) {
  cloud = make_cloud_client(a.cloud);  // fails here, before listening, if the cloud is unreachable
  std::shared_ptr<Collaborator> collab;
  std::string device_desc;
  if (a.device.empty()) {
    collab = make_remote_collaborator(a.device_server, a.protocol, cloud, a.collab);
    device_desc = "server " + a.device_server.url;
  } else {
    auto device = std::make_shared<LoadedModel>(load_checkpoint(a.device, a.compute));
    apply_protocol_flag(*device, a.protocol);
    apply_weights(*device, a.weights);
    collab = make_collaborator(device, cloud, a.collab);
    device_desc = a.device;
  }
  std::fprintf(
      stderr,
      "handoff serve: collaborative '%s' (device %s, protocol %s, cloud %s model '%s', fallback %s), "
      "API key %s\n",
      name.c_str(), device_desc.c_str(), collab->protocol().name.c_str(), a.cloud.url.c_str(),
      cloud->options().model.c_str(), collab->options().fallback ? "on" : "off", key_note.c_str());
  collab->limit_cloud_calls(a.cloud_slots);
  collab->share_device_decodes(a.max_batch);
  collab->guard_budget(guard);
  if (guard)
    std::fprintf(stderr,
                 "handoff serve: budget guard on: call rate %.3g over the last %lld decisions, starting from "
                 "threshold %.3g\n",
                 guard->options().target, static_cast<long long>(guard->options().window),
                 guard->options().base_threshold);
  if (a.cloud_slots == 0 || a.cloud_slots >= a.http_threads)
    std::fprintf(
        stderr,
        "handoff serve: warning: --cloud-slots %d with --http-threads %d: a hung cloud can hold every "
        "worker and device-only requests then wait\n",
        a.cloud_slots, a.http_threads);
  return std::make_shared<CollabResponder>(collab, name);
}

void run_serve(const ServeArgs& a) {
  install_stop_handlers();
  setup_threads_for(a.threads, a.model.empty() ? a.device : a.model);
  apply_precision(a.precision);
  const ServerOptions so = server_options(a);
  if (a.model.empty() && !a.collaborative())
    throw Error(
        "serve needs --model DIR (one model) or --device DIR|--device-url URL --cloud URL (collaborative)");
  if (a.weights != "fp32" && a.model.empty() && a.device.empty())
    throw Error("--weights applies to a model loaded here (--model or --device), not to a device server");
  if (!a.device.empty() && !a.device_server.url.empty())
    throw Error("--device and --device-url both name the device; give one");
  if (!a.model.empty() && !a.device_server.url.empty())
    throw Error("--device-url is the collaborative endpoint's device; --model serves one model on its own");
  if (!a.cloud.url.empty() && !a.collaborative())
    throw Error("--cloud is the collaborative endpoint's cloud: it needs --device DIR or --device-url URL");
  if (a.collaborative() && a.cloud.url.empty()) throw Error("the collaborative endpoint needs --cloud URL");
  if (a.max_call_rate >= 0 && !a.collaborative())
    throw Error("--max-call-rate applies to the collaborative endpoint (--device DIR --cloud URL)");
  if (a.max_call_rate >= 0 && !a.device_server.url.empty())
    throw Error(
        "--max-call-rate moves the threshold on the device's P(<handoff>), which a device behind "
        "--device-url does not report",
        "serve the device with --device DIR for the budget guard");
  const std::shared_ptr<BudgetGuard> guard = make_guard(a);  // bad settings fail before any loading
  if (!a.protocol.empty() && !a.collaborative())
    throw Error("--protocol applies to the collaborative endpoint (--device DIR --cloud URL)",
                "a model served with --model answers each request's own messages as they are");
  const std::string& dir_arg = a.model.empty() ? a.device : a.model;
  std::string name = a.model_name;
  if (name.empty() && dir_arg.empty()) name = "handoff";
  if (name.empty()) {
    auto dir = std::filesystem::absolute(dir_arg).lexically_normal();
    if (!dir.has_filename()) dir = dir.parent_path();  // ".../model/" → ".../model"
    name = dir.filename().string();
  }
  std::shared_ptr<Responder> responder;
  std::shared_ptr<const CloudClient> cloud;
  const std::string key_note = so.api_key.empty() ? "off" : ("required (from $" + a.api_key_env + ")");
  if (!a.collaborative()) {
    LoadedModel loaded = load_checkpoint(a.model, a.compute);
    apply_weights(loaded, a.weights);
    auto local = std::make_shared<LocalModelResponder>(std::move(loaded), name, a.max_batch);
    std::fprintf(stderr, "handoff serve: model '%s' from %s (context %lld tokens), API key %s\n",
                 name.c_str(), a.model.c_str(), static_cast<long long>(local->context_length()),
                 key_note.c_str());
    responder = local;
  } else {
    responder = collab_responder(a, guard, name, key_note, cloud);
  }

  ModelServer server(responder, so);
  const int port = server.bind();
  std::printf("listening on http://%s:%d\n", a.host.c_str(), port);
  std::fflush(stdout);

  std::thread watcher([&server, &cloud] { wait_for_stop_signal(server, cloud.get()); });
  server.run();
  const char zero = 0;  // wake the watcher if run() ended without a signal
  ssize_t ignored = write(g_signal_pipe[1], &zero, 1);
  (void)ignored;
  watcher.join();
  std::fprintf(stderr, "handoff serve: stopped\n");
}

}  // namespace

void register_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve",
      "Serve a checkpoint (--model) or the collaborative device+cloud system (--device, --cloud) over an "
      "OpenAI-compatible HTTP API (/v1/chat/completions)");
  auto* model_opt =
      cmd->add_option("--model", a->model, "Checkpoint directory to serve")->check(CLI::ExistingDirectory);
  auto* device_opt = cmd->add_option("--device", a->device,
                                     "Device checkpoint: serve collaborative inference (needs --cloud); each "
                                     "reply says who answered (\"handoff\" field, x-handoff-by header)")
                         ->check(CLI::ExistingDirectory)
                         ->excludes(model_opt);
  auto* cloud_opt = add_cloud_flags(cmd, a->cloud, /*required=*/false);
  device_opt->needs(cloud_opt);
  add_device_server_flags(cmd, a->device_server)->excludes(device_opt)->excludes(model_opt);
  add_collab_flags(cmd, a->collab);
  cmd->add_option("--model-name", a->model_name,
                  "Model id clients send in \"model\" (default: the directory name)");
  cmd->add_option("--host", a->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", a->port, "Port to listen on (0 = any free port; the bound one is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key-env", a->api_key_env,
                  "Name of an environment variable holding the API key; requests then need 'Authorization: "
                  "Bearer <key>'");
  cmd->add_option("--max-tokens-limit", a->max_tokens_limit, "Largest max_tokens a request may ask for")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--default-max-tokens", a->default_max_tokens, "max_tokens of a request that sets none")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", a->max_body_bytes, "Largest request body (larger → 413)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--threads", a->threads, "Compute threads (0 = by the model's width: `handoff info`)");
  add_precision_flag(cmd, a->precision);
  add_weights_flag(cmd, a->weights);
  add_protocol_flag(cmd, a->protocol);
  cmd->add_option("--compute", a->compute, "cpu | cuda (where the served model runs)")->capture_default_str();
  add_load_flags(cmd, *a);
  cmd->callback([a] { run_serve(*a); });
}

}  // namespace handoff::cli
