#include "rl/rl_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include <torch/optim/adamw.h>

#include "cloud/cloud_client.h"
#include "collab/cloud_answers.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "rl/iterate_selection.h"
#include "rl/method_registry.h"
#include "rl/metrics_log.h"
#include "rl/policy_loss.h"
#include "rl/pure/call_rate_dual.h"
#include "rl/rl_step.h"
#include "rl/trainer_state.h"
#include "tasks/task.h"

namespace handoff {

namespace {

// The cloud: reachable before any training starts, or a clear error now. Null for methods without one, and on
// every rank but 0: rank 0 alone talks to the cloud (one cache, one writer) and sends the others its
// verdicts.
std::unique_ptr<CloudClient> connect_cloud(const RlOptions& o, const RlMethod& method, const World& world) {
  if (!method.needs_cloud() || !world.main()) return nullptr;
  if (o.cloud_url.empty())
    throw Error("--algo " + o.algo + " needs a cloud", "pass --cloud URL (e.g. a `handoff serve` endpoint)");
  auto client = std::make_unique<CloudClient>(
      cloud_client_options(o.cloud_url, o.cloud_model, o.api_key_env, o.cloud_timeout_s, o.cloud_retries));
  if (!client->healthy())
    throw Error("the cloud at " + o.cloud_url + " is not reachable (GET /models failed)",
                "start it (e.g. `handoff serve --model models/cloud-chain --port 8080`) or fix --cloud");
  return client;
}

// The run's cloud answers (OUT/cloud_cache.jsonl unless --cloud-cache), its lines tagged with this run; null
// without a cloud.
std::unique_ptr<CloudAnswerCache> answer_cache(CloudClient* client, const RlOptions& o,
                                               const std::string& out_dir, const Protocol& protocol) {
  if (!client) return nullptr;
  return std::make_unique<CloudAnswerCache>(
      *client, o.cloud_cache.empty() ? out_dir + "/cloud_cache.jsonl" : o.cloud_cache, o.cloud_max_tokens,
      std::filesystem::weakly_canonical(out_dir).string(), protocol);
}

// The run's protocol: on resume the one it started with (a different --protocol is an error), else
// --protocol or what the initial checkpoint records; checked against the tokenizer (the <handoff> token only
// for a method that can call the cloud), set on `loaded` and written to OUT/protocol.json.
void use_run_protocol(const RlOptions& o, const RlMethod& method, LoadedModel& loaded, bool resuming,
                      const std::string& out_dir, const World& world) {
  Protocol p = loaded.protocol;  // the checkpoint's own (model_dir's on resume)
  if (!o.protocol.empty()) {
    Protocol asked = load_protocol(o.protocol);
    if (resuming && asked.to_json_text() != p.to_json_text())
      throw Error("cannot resume " + out_dir + " with --protocol " + o.protocol +
                      ": the run was trained with " + "protocol \"" + p.name + "\" (" + loaded.dir + "/" +
                      kProtocolFile + ")",
                  "resume without --protocol, or start a new run");
    p = std::move(asked);
  }
  loaded.use_protocol(p, method.needs_cloud());
  if (world.main()) write_file_atomic(out_dir + "/" + kProtocolFile, p.to_json_text());
}

// The frozen reference policy of the KL term (--kl-coef > 0), or none.
CausalLM reference_model(const RlOptions& o, const std::string& init_dir) {
  if (o.kl_coef <= 0) return CausalLM{nullptr};
  CausalLM reference = load_checkpoint(init_dir, o.device).model;
  reference->eval();
  return reference;
}

// The rollouts' hand-offs since the controller's last measurement, for --dual-bonus-sampled (summed over
// the data-parallel ranks, so every rank and the checkpoint hold the same window).
struct SampledWindow {
  double handoffs = 0, samples = 0;
  void add(double call_rate, size_t n, World& world) {
    const double k = call_rate * static_cast<double>(n);
    handoffs += world.distributed() ? world.sum(k) : k;
    samples += world.distributed() ? world.sum(static_cast<double>(n)) : static_cast<double>(n);
  }
  double take() {  // the window's rate (−1: empty), and a new window
    const double rate = samples > 0 ? handoffs / samples : -1.0;
    handoffs = samples = 0;
    return rate;
  }
};

// What a resumed run restores from OUT/model/trainer_state.json (zeros for a fresh run).
struct ResumePoint {
  int64_t step = 0;
  double budget_credit = 0;
  double dual_lambda = 0, probe_call_rate = -1, sampled_call_rate = -1;
  SampledWindow window;
};

ResumePoint resume_point(const std::string& model_dir, const RlOptions& o) {
  ResumePoint r;
  const auto st = read_trainer_state(model_dir);
  r.step = st.at("step").get<int64_t>();
  r.budget_credit = st.value("budget_credit", 0.0);
  r.dual_lambda = st.value("dual_lambda", 0.0);
  r.probe_call_rate = st.value("probe_call_rate", -1.0);
  r.sampled_call_rate = st.value("dual_sampled_rate", -1.0);
  r.window.handoffs = st.value("dual_window_handoffs", 0.0);
  r.window.samples = st.value("dual_window_samples", 0.0);
  if (st.value("algo", o.algo) != o.algo)
    throw Error(model_dir + " was trained with --algo " + st.value("algo", std::string()) + ", not " +
                o.algo);
  // A finished run that ended on a selected iterate holds those weights with the last step's optimiser
  // state: continuing it would mix the two.
  if (st.contains("selected_step") && o.steps > r.step)
    throw Error(model_dir + " ended on the iterate selected at step " + st["selected_step"].dump() +
                    "; it cannot be extended to " + std::to_string(o.steps) + " steps",
                "start a new run from it (--device " + model_dir + ")");
  return r;
}

bool selects_iterate(const RlOptions& o) {
  return o.call_rate_control == "dual" && o.dual_select_last > 0;
}

// The end-of-run iterate selection of --dual-select-last (rl/iterate_selection.h), or none.
std::optional<IterateSelection> make_selection(const RlOptions& o, const std::string& out_dir, bool resuming,
                                               int64_t resumed_step) {
  if (!selects_iterate(o)) return std::nullopt;
  std::optional<IterateSelection> sel;
  sel.emplace(out_dir + "/selected", o.budget / (1 + o.budget), selection_start(o));
  if (resuming) {
    sel->restore(resumed_step);
  } else {
    std::filesystem::remove_all(out_dir + "/selected");  // a candidate of an earlier run in this directory
  }
  return sel;
}

// The last iterate is a candidate too; then the run's final weights become the selected ones.
template <class Measure>
bool finish_selection(IterateSelection& sel, Measure& measure, CausalLM& model, const RlOptions& o) {
  measure(o.steps);
  const int64_t picked = sel.apply(model);
  if (!o.quiet && picked >= 0)
    std::fprintf(stderr, "call-rate selection: the weights after step %lld (greedy call %.3f on the probe)\n",
                 static_cast<long long>(picked), sel.selected_rate());
  return picked >= 0;
}

// The call-rate controller of --call-rate-control dual (issue 15), or none.
std::optional<CallRateDual> make_dual(const RlOptions& o, const RlMethod& method, const ResumePoint& start) {
  if (o.call_rate_control != "dual") return std::nullopt;
  if (!method.needs_cloud())
    throw Error("--call-rate-control dual needs a method that can call the cloud (not --algo " + o.algo +
                ")");
  std::optional<CallRateDual> dual;
  dual.emplace(o.budget / (1 + o.budget), o.dual_step, o.dual_kp, o.dual_lambda_max, o.dual_two_sided,
               o.dual_bonus_sampled);
  dual->restore(start.dual_lambda, start.probe_call_rate, start.sampled_call_rate);
  return dual;
}

// Sampled hand-off rate per difficulty: whether the policy learns *where* to call, not just how often.
nlohmann::json call_rate_by_difficulty(const Rollout& r) {
  std::map<int, std::pair<int64_t, int64_t>> by_diff;  // difficulty → (hand-offs, samples)
  for (const auto& s : r.samples) {
    auto& c = by_diff[r.prompts[s.prompt]->difficulty];
    c.first += s.out.parsed.kind == ResponseKind::kHandoff;
    c.second += 1;
  }
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [d, c] : by_diff)
    j[std::to_string(d)] = static_cast<double>(c.first) / static_cast<double>(c.second);
  return j;
}

// The step's learning rate: constant, then (with lr_tail > 0) a linear decay over the last lr_tail of the
// steps to lr/n at the last one. Why: the greedy hand-off decision of these models swings by ±0.1 in call
// rate between consecutive measurements at a constant rate (docs/results/2026-12-02-call-rate-control), so
// the last checkpoint lands anywhere in that band; a decaying tail lets the policy settle where the call-rate
// controller has put it.
double rl_lr(const RlOptions& o, int64_t step) {
  const auto tail = static_cast<int64_t>(std::llround(o.lr_tail * static_cast<double>(o.steps)));
  if (tail <= 0 || step < o.steps - tail) return o.lr;
  return o.lr * static_cast<double>(o.steps - step) / static_cast<double>(tail);
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

struct StepLog {
  int64_t step = 0;  // 1-based, the step just finished
  const Rollout* rollout = nullptr;
  const Scores* scores = nullptr;
  const Selection* selection = nullptr;
  double loss = 0, step_seconds = 0, elapsed_seconds = 0;
  // Parts of step_seconds: sampling the responses, and the policy update; the rest is the controller's
  // measurement, scoring (the cloud included) and the filter.
  double rollout_seconds = 0, update_seconds = 0;
  int64_t first_step = 0;              // the run's (or this resumed part's) first step, for the ETA
  CloudUsage cloud;                    // of the whole run, resumed parts included
  const CallRateDual* dual = nullptr;  // the call-rate controller, if on
  double probe_call_rate = -1;         // its last measurement (−1: none yet)
  double comm_seconds = -1;            // data-parallel: this step's time in collectives (−1: one process)
};

std::string cost_text(const CloudUsage& u, const RlOptions& o) {
  char buf[64];
  std::snprintf(buf, sizeof buf, " ($%.4f)", u.cost_usd(o.cloud_price_in, o.cloud_price_out));
  return buf;
}

std::string dual_text(const StepLog& s) {
  if (!s.dual) return "";
  char buf[96];
  std::snprintf(buf, sizeof buf, "  price %.3f (greedy call %.3f, target %.2f)", s.dual->handoff_cost(),
                s.probe_call_rate, s.dual->target());
  return buf;
}

// One metrics.jsonl line and (unless quiet) one progress line.
void log_step(MetricsLog& log, const RlOptions& o, const RlMethod& method, const StepLog& s) {
  const FilterResult& fr = s.selection->filter;
  const int64_t kept = static_cast<int64_t>(s.selection->kept.size());
  const double tok_s = s.rollout->generated_tokens / s.step_seconds;
  nlohmann::json line = {{"call_rate_by_difficulty", call_rate_by_difficulty(*s.rollout)},
                         {"step", s.step},
                         {"algo", o.algo},
                         {"reward_mean", s.scores->reward_mean},
                         {"acc_local", s.scores->local_accuracy},
                         {"call_rate", s.scores->call_rate},
                         {"budget_call_rate", o.budget / (1 + o.budget)},
                         {"kept_prompts", kept},
                         {"kept_fraction", static_cast<double>(kept) / o.prompts_per_step},
                         {"d1", fr.num_d1()},
                         {"d2_kept", fr.num_d2_kept()},
                         {"d2_candidates", fr.num_d2_candidates()},
                         {"dropped", fr.num_dropped()},
                         {"loss", s.loss},
                         {"lr", rl_lr(o, s.step - 1)},
                         {"tokens_per_s", tok_s},
                         {"step_seconds", s.step_seconds},
                         {"rollout_seconds", s.rollout_seconds},
                         {"update_seconds", s.update_seconds},
                         {"cloud_calls", s.cloud.calls},
                         {"cloud_no_answer", s.scores->cloud_no_answer},
                         {"cloud_prompt_tokens", s.cloud.prompt_tokens},
                         {"cloud_completion_tokens", s.cloud.completion_tokens}};
  const bool priced = o.cloud_price_in > 0 || o.cloud_price_out > 0;
  if (s.comm_seconds >= 0) line["comm_seconds"] = s.comm_seconds;
  if (priced) line["cloud_cost_usd"] = s.cloud.cost_usd(o.cloud_price_in, o.cloud_price_out);
  if (s.dual) {
    line["lambda"] = s.dual->lambda();
    line["handoff_price"] = s.dual->handoff_cost();
    line["probe_call_rate"] = s.probe_call_rate;
    if (o.dual_bonus_sampled) line["dual_sampled_rate"] = s.dual->last_sampled();
  }
  log.write(line);
  if (o.quiet) return;
  std::fprintf(
      stderr,
      "%s step %lld/%lld  reward %.3f  acc %.3f  call %.3f (budget %.2f)  D1 %d D2 %d/%d  %.0f tok/s  "
      "cloud calls %lld%s%s  ETA %.0fs\n",
      o.algo.c_str(), static_cast<long long>(s.step), static_cast<long long>(o.steps), s.scores->reward_mean,
      s.scores->local_accuracy, s.scores->call_rate, o.budget / (1 + o.budget),
      method.filter ? fr.num_d1() : static_cast<int>(kept), fr.num_d2_kept(), fr.num_d2_candidates(), tok_s,
      static_cast<long long>(s.cloud.calls), priced ? cost_text(s.cloud, o).c_str() : "",
      dual_text(s).c_str(),
      s.elapsed_seconds / static_cast<double>(s.step - s.first_step) * static_cast<double>(o.steps - s.step));
}

// Data-parallel (issue 19): rank 0 completes an interrupted save and says whether there is a run to resume;
// the ranks must then agree on the options and the resume point, and they start from rank 0's weights.
bool resume_on_every_rank(World& world, bool resume, const std::string& model_dir) {
  const bool here = world.main() && resume && prepare_resume(model_dir);
  return world.broadcast_bytes(here ? "1" : "0") == "1";
}

void join_ranks(World& world, const RlOptions& o, const std::string& init_dir, const ResumePoint& start,
                const std::string& model_dir, bool resuming, CausalLM& model) {
  if (!world.distributed()) return;
  nlohmann::json j = {{"options", o.to_json()},
                      {"init", checkpoint_fingerprint(init_dir)},
                      {"resume_step", start.step},
                      {"checkpoint", resuming ? checkpoint_fingerprint(model_dir) : ""}};
  j["options"].erase("quiet");
  world.require_same("options or checkpoint", j.dump());
  if (resuming && world.main()) {
    const int64_t was = read_trainer_state(model_dir).value("world_size", int64_t{1});
    if (was != world.size() && !o.quiet)
      std::fprintf(stderr,
                   "%s: resuming a run saved by %lld process(es) on %d: the same steps, summed in another "
                   "order\n",
                   o.algo.c_str(), static_cast<long long>(was), world.size());
  }
  torch::NoGradGuard no_grad;
  world.broadcast(model->parameters());
}

// Data-parallel: how long the other ranks wait while rank 0 asks the cloud for a step's prompts — each call
// up to its timeout and retries, cloud_concurrency at a time — on top of the launch's timeout.
std::chrono::milliseconds verdict_wait(const RlOptions& o, const World& world) {
  const double rounds = std::ceil(static_cast<double>(o.prompts_per_step) / std::max(1, o.cloud_concurrency));
  return world.env().timeout + std::chrono::milliseconds(static_cast<int64_t>(
                                   1000 * 1.2 * o.cloud_timeout_s * (o.cloud_retries + 1) * rounds));
}

// The run's result after `steps_done` steps.
void record_step(RlResult& res, int64_t steps_done, const Scores& sc, const CloudUsage& usage,
                 const RlOptions& o) {
  res.last_reward = sc.reward_mean;
  res.last_call_rate = sc.call_rate;
  res.last_local_accuracy = sc.local_accuracy;
  res.steps_done = steps_done;
  res.cloud_calls = usage.calls;
  res.cloud_prompt_tokens = usage.prompt_tokens;
  res.cloud_completion_tokens = usage.completion_tokens;
  res.cloud_cost_usd = usage.cost_usd(o.cloud_price_in, o.cloud_price_out);
}

// The end-of-run iterate selection on every rank: each measures its share of the probe, rank 0 (which holds
// the candidates) picks, and its weights go to all. Returns whether rank 0 applied a selected iterate.
template <class Measure>
bool select_last_iterate(std::optional<IterateSelection>& selection, Measure& measure, CausalLM& model,
                         const RlOptions& o, World& world) {
  bool applied = false;
  if (selection) {
    applied = finish_selection(*selection, measure, model, o);
  } else {
    measure(o.steps);  // this rank's share of the last measurement
  }
  torch::NoGradGuard no_grad;
  world.broadcast(model->parameters());
  return applied;
}

// trainer_state.json of an RL run after `step` steps, before the controller's part.
nlohmann::json run_state(int64_t step, const World& world, const RlOptions& o, double budget_credit,
                         int64_t cloud_calls, const std::string& init_dir) {
  return {{"step", step},     {"world_size", world.size()},     {"kind", "rl"},
          {"algo", o.algo},   {"budget_credit", budget_credit}, {"cloud_calls", cloud_calls},
          {"init", init_dir}, {"options", o.to_json()}};
}

// What the call-rate controller and the iterate selection add to trainer_state.json: λ, its last
// measurements and the open sampled window; the selected iterate when the weights saved are the selected
// ones (`applied` non-null).
void add_controller_state(nlohmann::json& state, const CallRateDual* dual, double probe_rate,
                          const SampledWindow& window, const IterateSelection* applied) {
  if (dual) {
    state["dual_lambda"] = dual->lambda();
    state["probe_call_rate"] = probe_rate;
    state["dual_sampled_rate"] = dual->last_sampled();
    state["dual_window_handoffs"] = window.handoffs;
    state["dual_window_samples"] = window.samples;
  }
  if (applied) {
    state["selected_step"] = applied->selected_step();
    state["selected_probe_call_rate"] = applied->selected_rate();
  }
}

// The hand-off token's id for --handoff-credit decision (−1 for all); an Error before any step where an
// option needs the token and the protocol hands off with a phrase.
int handoff_token_for(const RlOptions& o, const DeviceSpeech& io) {
  if (solve_first_steps(o) > 0) handoff_token_id(io, "--solve-first");
  return o.handoff_credit == "decision" ? handoff_token_id(io, "--handoff-credit decision") : -1;
}

// Rank 0 alone writes metrics (and checkpoints).
std::optional<MetricsLog> metrics_log(const World& world, const std::string& out_dir, int64_t first_step) {
  if (!world.main()) return std::nullopt;
  return std::optional<MetricsLog>(std::in_place, out_dir + "/metrics.jsonl", first_step);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

RlResult run_rl(const RlOptions& o, const std::string& init_dir, const std::string& out_dir, bool resume) {
  o.validate();
  const RlMethod& method = find_rl_method(o.algo);
  const RewardFn reward = make_reward(method.reward, o.weights, o.allow_any_order, o.format_bonus);
  auto task = make_task(o.task);
  const std::vector<int> diffs = resolve_difficulties(*task, o.difficulties);
  World& world = World::instance();
  auto client = connect_cloud(o, method, world);
  make_dirs(out_dir);
  const std::string model_dir = out_dir + "/model";
  const bool resuming = resume_on_every_rank(world, resume, model_dir);
  const ResumePoint start = resuming ? resume_point(model_dir, o) : ResumePoint{};
  auto loaded = load_checkpoint(resuming ? model_dir : init_dir, o.device);
  join_ranks(world, o, init_dir, start, model_dir, resuming, loaded.model);  // before anything is written
  use_run_protocol(o, method, loaded, resuming, out_dir, world);
  std::unique_ptr<CloudAnswerCache> cloud = answer_cache(client.get(), o, out_dir, loaded.protocol);
  CausalLM model = loaded.model;
  const Tokenizer& tok = *loaded.tokenizer;
  const DeviceSpeech io{tok, loaded.protocol};
  const std::vector<Problem> pool = training_pool(*task, diffs, o);
  require_readable(io, *task, pool);
  CausalLM reference = reference_model(o, init_dir);
  model->train();
  torch::optim::AdamW opt(model->parameters(),
                          torch::optim::AdamWOptions(o.lr).betas({0.9, 0.99}).weight_decay(o.weight_decay));
  if (resuming) load_optimizer_state(model_dir, opt);
  BudgetController budget(o.budget, o.carry_remainder);
  budget.restore_credit(start.budget_credit);
  const int credit_token = handoff_token_for(o, io);  // refused before any step where it is missing
  std::optional<CallRateDual> dual = make_dual(o, method, start);
  double probe_rate = start.probe_call_rate;
  SampledWindow window = start.window;
  auto selection = world.main() ? make_selection(o, out_dir, resuming, start.step) : std::nullopt;
  bool selection_applied = false;
  // The deployed (greedy) rate of the weights after `s` updates, on a fresh probe; a selection candidate.
  auto measure = [&](int64_t s) {
    probe_rate = greedy_call_rate(model, io, probe_set(*task, diffs, o, s, probe_size(o, s)), o, world);
    if (selection) selection->offer(s, probe_rate, model, tok, loaded.protocol);
    return probe_rate;
  };
  std::optional<MetricsLog> log = metrics_log(world, out_dir, start.step);
  // From the cache file, not the checkpoint: calls made after the last save of a killed run count too.
  auto cloud_usage = [&] { return cloud ? cloud->run_usage() : CloudUsage{}; };
  int64_t last_saved = start.step;
  auto save = [&](int64_t step) {
    last_saved = step;
    if (!world.main()) return;
    nlohmann::json state = run_state(step, world, o, budget.credit(), cloud_usage().calls, init_dir);
    add_controller_state(state, dual ? &*dual : nullptr, probe_rate, window,
                         selection && selection_applied ? &*selection : nullptr);
    save_training_checkpoint(model_dir, model, tok, loaded.protocol, state, opt);
  };

  RlResult res;
  res.steps_done = start.step;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t step = start.step;
  bool updated = false;  // whether this step's update is in the weights (an error after it saves step + 1)
  int steps_taken = 0;   // optimiser steps of this step's update so far (> 0 and !updated: part-updated)
  bool selecting_now = false;  // the end-of-run selection is under way (an error in it: not saved)
  const auto wait_for_cloud = verdict_wait(o, world);
  try {
    for (; step < o.steps; ++step) {
      updated = false;
      steps_taken = 0;
      const auto ts = std::chrono::steady_clock::now();
      const double comm0 = world.comm_seconds();
      set_lr(opt, rl_lr(o, step));
      // From the deployed (greedy) rate; not while --solve-first bans the hand-off (nothing to steer yet).
      if (dual && step >= solve_first_steps(o) && step % o.dual_every == 0)
        dual->update(measure(step), window.take());
      const auto tr = std::chrono::steady_clock::now();
      Rollout r = rollout(model, io, *task, pool, o, step, world);
      const double rollout_s = seconds_since(tr);
      const Scores sc = score(r, method, reward, cloud.get(), *task, o.cloud_concurrency,
                              dual ? dual->handoff_cost() : 0.0, world, wait_for_cloud);
      if (o.dual_bonus_sampled) window.add(sc.call_rate, r.samples.size(), world);
      const Selection sel = select_prompts(r, sc, method, budget, o, step);
      const PolicyBatch batch = policy_batch(r, sel, method, o.group, credit_token);
      const auto tu = std::chrono::steady_clock::now();
      const double loss =
          policy_update(model, opt, batch, o, o.kl_coef > 0 ? &reference : nullptr, world, &steps_taken);
      const double update_s = seconds_since(tu);
      updated = true;
      const CloudUsage usage = cloud_usage();
      record_step(res, step + 1, sc, usage, o);
      if (log && ((step + 1) % o.log_every == 0 || step + 1 == o.steps)) {
        log_step(*log, o, method,
                 {step + 1, &r, &sc, &sel, loss, seconds_since(ts), seconds_since(t0), rollout_s, update_s,
                  start.step, usage, dual ? &*dual : nullptr, probe_rate,
                  world.distributed() ? world.comm_seconds() - comm0 : -1.0});
      }
      const bool interrupted = o.stop_at_step > 0 && step + 1 >= o.stop_at_step;
      if (selects_iterate(o) && step + 1 == o.steps) {
        selecting_now = true;
        selection_applied = select_last_iterate(selection, measure, model, o, world);
        selecting_now = false;
      }
      if ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || step + 1 == o.steps ||
          interrupted)
        save(step + 1);
      if (interrupted) {
        ++step;
        break;
      }
    }
  } catch (const Error& e) {
    // No lost work: the last completed step is saved — unless the weights are between two states (epochs
    // part-done, the end-of-run selection under way: a lost data-parallel rank), where the last one stands.
    const bool between = (!updated && steps_taken > 0) || selecting_now;
    if (!between) save(updated ? step + 1 : step);
    throw Error("RL step " + std::to_string(step + 1) + " failed: " + e.what(),
                "the checkpoint at step " + std::to_string(last_saved) + " is in " + model_dir +
                    "; fix the cause and rerun with --resume");
  }
  world.barrier();  // the other ranks exit once rank 0's last checkpoint is written
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace handoff
