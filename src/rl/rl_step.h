#pragma once
// One RL step as named stages (paper §4 "One step, in order"), each a function of plain inputs with a typed
// result, wired together by rl_trainer.cpp:
//   rollout  — the step's prompts and G samples of each (batched KV-cache sampling), parsed and verified
//   score    — the cloud's verdicts where they matter, and every sample's reward (§3.2)
//   select   — which prompts the update uses: all, or D¹ ∪ capped D² under the budget (§3.3)
//   batch    — group advantages of the kept prompts, as rows of the policy-gradient batch (§3.3)
// The loss and the optimiser step are in policy_loss.h.
#include <cstdint>
#include <optional>
#include <vector>

#include "collab/cloud_answers.h"
#include "collab/device_run.h"
#include "dist/world.h"
#include "rl/method_registry.h"
#include "rl/pure/prompt_filter.h"
#include "rl/rl_options.h"
#include "tasks/task.h"

namespace handoff {

// A seed derived from (run seed, step, salt): a step's prompts and samples are functions of these alone, so a
// resumed run replays exactly what an uninterrupted one would have drawn.
uint64_t step_seed(uint64_t seed, uint64_t step, uint64_t salt);

// The fixed training set: prompt_pool train-split problems, uniform over the difficulties.
std::vector<Problem> training_pool(const Task& task, const std::vector<int>& difficulties,
                                   const RlOptions& o);

// The call-rate controller's probe set for the measurement at `step`: `count` train-split problems
// drawn apart from the training pool (another seed), uniform over the difficulties; never test items. A fresh
// draw at every measurement: a fixed set would steer *its own* rate to the target while the population's rate
// misses it by the set's sampling error (±0.04 at 128 items, measured as the main miss of the first
// controller); with fresh draws the integral term averages that error out.
// (a larger count extends the smaller one's draw: its first items are the same).
std::vector<Problem> probe_set(const Task& task, const std::vector<int>& difficulties, const RlOptions& o,
                               int64_t step, int64_t count);
// The steps [0, this) of --solve-first: rollouts with the hand-off token banned, the controller idle.
int64_t solve_first_steps(const RlOptions& o);
// The first step whose iterate --dual-select-last may select (rl/iterate_selection.h).
int64_t selection_start(const RlOptions& o);
// The probe's size for the measurement of the weights after `step` updates: o.dual_select_probe inside the
// selection window when set, else o.dual_probe.
int64_t probe_size(const RlOptions& o, int64_t step);
// The deployed (greedy, no threshold) hand-off rate of the model on `items`. Data-parallel: each rank
// decodes its share of the items and the calls are summed; within a rank, o.data_threads threads split it.
// Completions of at most o.max_new_tokens.
double greedy_call_rate(CausalLM& model, const DeviceSpeech& io, const std::vector<Problem>& items,
                        const RlOptions& o, World& world = World::instance());

struct Sample {
  int prompt = 0;  // index into Rollout::prompts
  DeviceOutput out;
  std::optional<bool> local_correct;  // the verifier's verdict on a local answer
  double reward = 0;
};

struct Rollout {
  std::vector<const Problem*> prompts;  // P prompts of the step
  std::vector<Sample> samples;          // P·G, prompt-major: samples[p·G + g]
  std::vector<int> local_correct;       // per prompt: how many of its G samples answered correctly
  std::vector<bool> any_handoff;        // per prompt: whether any sample called the cloud
  int64_t generated_tokens = 0;
};
// Data-parallel (issue 19): each rank samples the G completions of its contiguous share of the P prompts,
// with the seeds one process would use for them, and the ranks exchange their samples, so that every rank
// holds the whole rollout and decides over the whole batch.
Rollout rollout(CausalLM& model, const DeviceSpeech& io, const Task& task, const std::vector<Problem>& pool,
                const RlOptions& o, int64_t step, World& world = World::instance());

struct Scores {
  std::vector<std::optional<bool>> cloud_correct;             // per prompt; asked only where it matters
  double reward_mean = 0, call_rate = 0, local_accuracy = 0;  // over the P·G samples
  // Cloud replies this step with no answer in any form (a reasoning model cut at max_tokens, a refusal):
  // judged wrong, and counted so that a silent zero is visible in the metrics.
  int64_t cloud_no_answer = 0;
};
// Asks the cloud (through the cache) about prompts with a hand-off, or — with filtering — whose samples all
// failed; then writes every sample's reward into `r`: the method's reward, less `handoff_cost` (the
// call-rate controller's λ) for a hand-off. reward_mean is the method's reward alone. `cloud` may be null for
// methods without one. Data-parallel: rank 0 alone asks the cloud (one cache, one writer, no call twice) and
// sends its verdicts to the others, who wait for them up to `verdict_wait` (the cloud's own worst case; 0:
// the launch's timeout); `cloud` is null on the other ranks.
Scores score(Rollout& r, const RlMethod& method, const RewardFn& reward, CloudAnswerCache* cloud,
             const Task& task, int cloud_concurrency, double handoff_cost = 0.0,
             World& world = World::instance(),
             std::chrono::milliseconds verdict_wait = std::chrono::milliseconds(0));

struct Selection {
  std::vector<int> kept;  // prompt indices the update uses
  FilterResult filter;    // the D¹ / D² split (empty for methods without filtering)
};
Selection select_prompts(const Rollout& r, const Scores& s, const RlMethod& method, BudgetController& budget,
                         const RlOptions& o, int64_t step);

// The rows of the policy-gradient update: every sample of a kept prompt with a non-zero advantage.
struct PolicyBatch {
  std::vector<std::vector<int>> prompts, completions;
  std::vector<float> advantages;
  std::vector<std::vector<float>> old_logprobs;  // the sampling policy's, per completion token
  // Per row, the first completion token that carries the advantage (0: every token; --handoff-credit
  // decision: a hand-off row's hand-off token).
  std::vector<int64_t> credit_from;
  int64_t kept_prompts = 0;  // |kept|, the loss's normaliser
  bool empty() const { return advantages.empty(); }
};
// credit_token ≥ 0: a hand-off row's advantage is carried from its last such token on (--handoff-credit
// decision); < 0: by every token.
PolicyBatch policy_batch(const Rollout& r, const Selection& sel, const RlMethod& method, int64_t group,
                         int credit_token = -1);
// Appends row i of `from` to `to`.
void append_row(PolicyBatch& to, const PolicyBatch& from, size_t i);

}  // namespace handoff
