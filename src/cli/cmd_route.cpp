// `handoff route fit|eval`: one router of the comparison on its own. `fit` computes a device model's greedy
// verdicts on a validation set, fits the router on them, calibrates it to a call rate and writes it to a JSON
// file; `eval` reads that file and routes held-out items: accuracy and call rate against a cloud (--cloud),
// or the per-item scores and decisions (--scores).
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "cli/cloud_flags.h"
#include "cli/commands.h"
#include "cli/protocol_flag.h"
#include "cli/thread_flag.h"
#include "common/error.h"
#include "eval/eval_set.h"
#include "eval/methods_eval.h"
#include "route/handoff_threshold.h"
#include "route/router.h"
#include "route/router_file.h"
#include "runtime/runtime.h"

namespace handoff::cli {

namespace {

// The items a router is fit on or evaluated on.
struct ItemFlags {
  std::string task = "chain";
  std::vector<int> difficulties;
  int64_t n = 50;
  uint64_t seed = 0;
};

void add_item_flags(CLI::App* cmd, ItemFlags& f, const std::string& what) {
  cmd->add_option("--task", f.task, "Task: chain | countdown | wordmath")->capture_default_str();
  cmd->add_option("--difficulties", f.difficulties, "Difficulties (default: the task's range)")
      ->delimiter(',');
  cmd->add_option("--n", f.n, "Items per difficulty in the " + what + " set")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed of the " + what + " set")->capture_default_str();
}

struct FitArgs {
  std::string router, device, out;
  ItemFlags items{"chain", {}, 50, 777};
  double rate = 0.3;
  uint64_t router_seed = 5;
  int64_t max_new_tokens = 64;
  int threads = 0;
  std::string protocol;
};

struct EvalArgs {
  std::string router_file, device;
  ItemFlags items{"", {}, 50, 20261123};
  bool scores = false;
  int threads = 0;
  CloudFlags cloud;
  std::string protocol;
};

std::string all_keys() {
  std::string s;
  for (const auto& k : route::router_keys()) s += k + " | ";
  return s + route::HandoffThreshold::key();
}

void fit_router(const FitArgs& a) {
  setup_threads_for(a.threads, a.device);
  auto task = make_task(a.items.task);
  auto m = load_checkpoint(a.device);
  apply_protocol_flag(m, a.protocol);
  const route::RouterDevice device{m.model, m.tokenizer.get(), &m.protocol};
  const auto val = make_eval_set(*task, resolve_difficulties(*task, a.items.difficulties), a.items.n,
                                 a.items.seed, Split::kTrain);
  // The device as an absolute path, so `route eval` finds it from any directory.
  const std::string device_dir = std::filesystem::absolute(a.device).lexically_normal().string();
  route::RouterFile f{
      a.router, device_dir, task->name(), a.rate, 0, a.max_new_tokens, nlohmann::json::object()};
  if (a.router == route::HandoffThreshold::key()) {
    f.threshold = route::HandoffThreshold(device, *task, a.max_new_tokens).calibrate(val, a.rate);
  } else {
    auto router = route::make_router(a.router, device, a.router_seed);
    const DeviceVerdicts d = device_verdicts(m.model, device.speech(), *task, val, a.max_new_tokens);
    const route::RouterSplit split{val, d};
    router->fit(split);
    f.threshold = router->calibrate(router->score(split), a.rate);
    f.state = router->state();
  }
  route::save_router_file(a.out, f);
  std::printf("%s fit on %zu validation items of %s: threshold %.6g for call rate %.3f → %s\n",
              a.router.c_str(), val.size(), task->name().c_str(), f.threshold, a.rate, a.out.c_str());
}

// The routed device verdicts and the decisions on `test`; the per-item scores when the router has them.
struct Routing {
  DeviceVerdicts device;
  std::vector<uint8_t> call;
  std::vector<double> scores;
};

Routing route_items(const route::RouterFile& f, const route::RouterDevice& device, const Task& task,
                    const std::vector<Problem>& test) {
  Routing r;
  if (f.router == route::HandoffThreshold::key()) {
    r.device = route::HandoffThreshold(device, task, f.max_new_tokens).verdicts(test, f.threshold);
    r.call = r.device.handoff;
    return r;
  }
  auto router = route::make_router(f.router, device);
  router->load_state(f.state);
  CausalLM model = device.model;
  r.device = device_verdicts(model, device.speech(), task, test, f.max_new_tokens);
  r.scores = router->score({test, r.device});
  r.call = router->decide(r.scores, f.threshold);
  for (size_t i = 0; i < r.call.size(); ++i) r.call[i] = r.call[i] || r.device.handoff[i];
  return r;
}

void eval_router(const EvalArgs& a) {
  const route::RouterFile f = route::load_router_file(a.router_file);
  setup_threads_for(a.threads, a.device.empty() ? f.device : a.device);
  std::shared_ptr<const CloudClient> client;
  if (!a.cloud.url.empty()) client = make_cloud_client(a.cloud);  // unreachable: an error before any work
  auto task = make_task(a.items.task.empty() ? f.task : a.items.task);
  auto m = load_checkpoint(a.device.empty() ? f.device : a.device);
  apply_protocol_flag(m, a.protocol);
  const auto test = make_eval_set(*task, resolve_difficulties(*task, a.items.difficulties), a.items.n,
                                  a.items.seed, Split::kTest);
  const Routing r = route_items(f, {m.model, m.tokenizer.get(), &m.protocol}, *task, test);
  if (a.scores)
    for (size_t i = 0; i < test.size(); ++i)
      std::printf("item %zu\tscore %s\t%s\tdevice %s\n", i,
                  r.scores.empty() ? "-" : std::to_string(r.scores[i]).c_str(),
                  r.call[i] ? "cloud" : "device", r.device.local_correct[i] ? "right" : "wrong");
  const double n = static_cast<double>(std::max<size_t>(1, test.size()));
  std::printf("%s (threshold %.6g) on %zu held-out items of %s: call rate %.3f, device-only accuracy %.3f\n",
              f.router.c_str(), f.threshold, test.size(), task->name().c_str(),
              std::accumulate(r.call.begin(), r.call.end(), 0.0) / n,
              std::accumulate(r.device.local_correct.begin(), r.device.local_correct.end(), 0.0) / n);
  if (!client) return;
  CloudAnswerCache cache(*client, "", 128, "", m.protocol);
  const MethodRow row = routed(f.router, r.device, cloud_verdicts(cache, *task, test), test, r.call);
  std::printf("with the cloud %s: accuracy %.3f at call rate %.3f\n", a.cloud.url.c_str(), row.accuracy(),
              row.call_rate());
}

}  // namespace

void register_route(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("route", "Fit a router on a device model's validation verdicts, or evaluate one");
  cmd->require_subcommand(1);

  auto f = std::make_shared<FitArgs>();
  auto* fit = cmd->add_subcommand("fit", "Fit and calibrate a router on validation items; write it as JSON");
  fit->add_option("--router", f->router, "Router: " + all_keys())->required();
  fit->add_option("--device", f->device,
                  "Device checkpoint whose verdicts are routed (e.g. models/device-chain)")
      ->required();
  fit->add_option("--out", f->out, "Router file to write (JSON)")->required();
  add_item_flags(fit, f->items, "validation");
  fit->add_option("--rate", f->rate, "Cloud-call rate to calibrate to")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  fit->add_option("--router-seed", f->router_seed, "Seed of the random router")->capture_default_str();
  fit->add_option("--max-new-tokens", f->max_new_tokens, "Device generation limit")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  fit->add_option("--threads", f->threads, "Compute threads (0 = by the model's width: `handoff info`)");
  add_protocol_flag(fit, f->protocol);
  fit->callback([f] { fit_router(*f); });

  auto e = std::make_shared<EvalArgs>();
  auto* ev = cmd->add_subcommand("eval",
                                 "Route held-out items with a fitted router: call rate (and accuracy "
                                 "with --cloud)");
  ev->add_option("--router", e->router_file, "Router file written by `handoff route fit`")->required();
  ev->add_option("--device", e->device, "Device checkpoint (default: the one the router was fit on)");
  add_item_flags(ev, e->items, "held-out");
  ev->get_option("--task")->description("Task (default: the one the router was fit on)");
  ev->add_flag("--scores", e->scores, "Print each item's score, decision and the device's verdict");
  ev->add_option("--threads", e->threads, "Compute threads (0 = by the model's width: `handoff info`)");
  add_protocol_flag(ev, e->protocol);
  add_cloud_flags(ev, e->cloud, /*required=*/false)
      ->description("OpenAI-compatible cloud the routed items go to (e.g. http://127.0.0.1:8080/v1)");
  ev->callback([e] { eval_router(*e); });
}

}  // namespace handoff::cli
