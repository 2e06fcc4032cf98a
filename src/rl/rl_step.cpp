#include "rl/rl_step.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "collab/verdicts.h"
#include "protocol/final_answer.h"
#include "runtime/data_threads.h"

namespace handoff {

namespace {

// This rank's contiguous share [lo, hi) of n items.
std::pair<size_t, size_t> share(size_t n, const World& world) {
  const auto W = static_cast<size_t>(world.size()), r = static_cast<size_t>(world.rank());
  return {n * r / W, n * (r + 1) / W};
}

// [0, n) in contiguous runs over `threads` data threads (runtime/data_threads.h), run(lo, hi) on each, the
// outputs in order. Every row decodes with its own seed, so the split changes the speed only (as across
// ranks).
std::vector<DeviceOutput> outputs_on_threads(
    size_t n, int threads, const std::function<std::vector<DeviceOutput>(size_t, size_t)>& run) {
  const int T = static_cast<int>(std::clamp<size_t>(static_cast<size_t>(std::max(1, threads)), 1, n));
  std::vector<std::vector<DeviceOutput>> parts(static_cast<size_t>(T));
  on_threads(T, [&](int t) {
    const size_t lo = n * t / T, hi = n * (t + 1) / T;
    parts[static_cast<size_t>(t)] = run(lo, hi);
  });
  std::vector<DeviceOutput> all;
  for (auto& p : parts)
    for (auto& o : p) all.push_back(std::move(o));
  return all;
}

// Device outputs as CBOR (floats exact) and back.
std::string pack_outputs(const std::vector<DeviceOutput>& outs) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& o : outs)
    a.push_back({{"p", o.prompt_tokens},
                 {"t", o.tokens},
                 {"l", o.logprobs},
                 {"x", o.text},
                 {"e", o.ended_with_eos},
                 {"k", static_cast<int>(o.parsed.kind)},
                 {"a", o.parsed.answer},
                 {"w", o.parsed.well_formatted},
                 {"r", o.parsed.reasoning},
                 {"h", o.handoff_score}});
  const auto bytes = nlohmann::json::to_cbor(a);
  return std::string(bytes.begin(), bytes.end());
}

void unpack_outputs(const std::string& bytes, std::vector<DeviceOutput>& into) {
  for (const auto& j : nlohmann::json::from_cbor(bytes)) {
    DeviceOutput o;
    o.prompt_tokens = j.at("p").get<std::vector<int>>();
    o.tokens = j.at("t").get<std::vector<int>>();
    o.logprobs = j.at("l").get<std::vector<float>>();
    o.text = j.at("x").get<std::string>();
    o.ended_with_eos = j.at("e").get<bool>();
    o.parsed.kind = static_cast<ResponseKind>(j.at("k").get<int>());
    o.parsed.answer = j.at("a").get<std::string>();
    o.parsed.well_formatted = j.at("w").get<bool>();
    o.parsed.reasoning = j.at("r").get<std::string>();
    o.handoff_score = j.at("h").get<float>();
    into.push_back(std::move(o));
  }
}

// Every rank's outputs in rank order: the whole step's samples, prompt-major as one process makes them.
std::vector<DeviceOutput> gather_outputs(World& world, const std::vector<DeviceOutput>& mine) {
  std::vector<DeviceOutput> all;
  for (const auto& bytes : world.all_gather_bytes(pack_outputs(mine))) unpack_outputs(bytes, all);
  return all;
}

// Rank 0's cloud verdicts (0 not asked, 1 wrong, 2 right) and no-answer count, on every rank.
void share_verdicts(World& world, Scores& s, std::chrono::milliseconds wait) {
  std::string v;
  for (const auto& c : s.cloud_correct) v.push_back(static_cast<char>(c ? 1 + *c : 0));
  v += std::to_string(s.cloud_no_answer);
  v = world.broadcast_bytes(v, 0, wait);
  for (size_t p = 0; p < s.cloud_correct.size(); ++p)
    s.cloud_correct[p] = v[p] == 0 ? std::nullopt : std::optional<bool>(v[p] == 2);
  s.cloud_no_answer = std::stoll(v.substr(s.cloud_correct.size()));
}

}  // namespace

uint64_t step_seed(uint64_t seed, uint64_t step, uint64_t salt) {
  uint64_t x =
      seed * 0x9E3779B97F4A7C15ull ^ (step + 1) * 0xBF58476D1CE4E5B9ull ^ salt * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x * 0xD6E8FEB86659FD93ull;
}

std::vector<Problem> training_pool(const Task& task, const std::vector<int>& difficulties,
                                   const RlOptions& o) {
  std::vector<Problem> pool;
  std::mt19937_64 rng(step_seed(o.seed, 0, 17));
  for (int64_t i = 0; i < o.prompt_pool; ++i)
    pool.push_back(task.sample(rng, difficulties[i % difficulties.size()], Split::kTrain));
  return pool;
}

std::vector<Problem> probe_set(const Task& task, const std::vector<int>& difficulties, const RlOptions& o,
                               int64_t step, int64_t count) {
  std::vector<Problem> items;
  std::mt19937_64 rng(step_seed(o.seed, static_cast<uint64_t>(step), 19));
  for (int64_t i = 0; i < count; ++i)
    items.push_back(task.sample(rng, difficulties[i % difficulties.size()], Split::kTrain));
  return items;
}

int64_t solve_first_steps(const RlOptions& o) {
  return static_cast<int64_t>(std::llround(o.solve_first * static_cast<double>(o.steps)));
}

int64_t selection_start(const RlOptions& o) {
  return o.steps - static_cast<int64_t>(std::llround(o.dual_select_last * static_cast<double>(o.steps)));
}

int64_t probe_size(const RlOptions& o, int64_t step) {
  const bool in_window = o.dual_select_last > 0 && step >= selection_start(o);
  return in_window && o.dual_select_probe > 0 ? o.dual_select_probe : o.dual_probe;
}

double greedy_call_rate(CausalLM& model, const DeviceSpeech& io, const std::vector<Problem>& items,
                        const RlOptions& o, World& world) {
  if (items.empty()) return 0.0;
  const auto [lo, hi] = share(items.size(), world);
  int64_t calls = 0;
  if (hi > lo) {
    const auto outs = outputs_on_threads(hi - lo, o.data_threads, [&](size_t a, size_t b) {
      return greedy_device_outputs(
          model, io, std::vector<Problem>(items.begin() + lo + a, items.begin() + lo + b), o.max_new_tokens);
    });
    model->train();
    for (const auto& out : outs) calls += out.parsed.kind == ResponseKind::kHandoff;
  }
  return world.sum(static_cast<double>(calls)) / static_cast<double>(items.size());
}

Rollout rollout(CausalLM& model, const DeviceSpeech& io, const Task& task, const std::vector<Problem>& pool,
                const RlOptions& o, int64_t step, World& world) {
  const int64_t G = o.group, P = o.prompts_per_step;
  Rollout r;
  std::mt19937_64 rng(step_seed(o.seed, step, 1));
  for (int64_t p = 0; p < P; ++p) r.prompts.push_back(&pool[rng() % pool.size()]);
  // G samples of every prompt (of this rank's share) in one batched generation.
  const auto [lo, hi] = share(static_cast<size_t>(P), world);
  std::vector<std::string> queries;
  std::vector<uint64_t> seeds;
  for (auto p = static_cast<int64_t>(lo); p < static_cast<int64_t>(hi); ++p)
    for (int64_t g = 0; g < G; ++g) {
      queries.push_back(r.prompts[p]->prompt);
      seeds.push_back(step_seed(o.seed, step, 1000 + p * G + g));
    }
  model->eval();
  std::vector<DeviceOutput> outs;
  SamplingOptions sampling = device_sampling(io, o.temperature, o.max_new_tokens, o.top_p);
  if (step < solve_first_steps(o)) sampling.banned_ids.push_back(handoff_token_id(io, "--solve-first"));
  if (!queries.empty())
    outs = outputs_on_threads(queries.size(), o.data_threads, [&](size_t lo, size_t hi) {
      return run_device(model, io, std::vector<std::string>(queries.begin() + lo, queries.begin() + hi),
                        sampling, std::vector<uint64_t>(seeds.begin() + lo, seeds.begin() + hi));
    });
  model->train();
  if (world.distributed()) outs = gather_outputs(world, outs);
  r.samples.resize(P * G);
  r.local_correct.assign(P, 0);
  r.any_handoff.assign(P, false);
  for (int64_t i = 0; i < P * G; ++i) {
    auto& s = r.samples[i];
    s.prompt = static_cast<int>(i / G);
    s.out = std::move(outs[i]);
    r.generated_tokens += static_cast<int64_t>(s.out.tokens.size());
    if (s.out.parsed.kind == ResponseKind::kLocalAnswer) {
      s.local_correct = task.verify(*r.prompts[s.prompt], s.out.parsed.answer);
      r.local_correct[s.prompt] += *s.local_correct;
    } else if (s.out.parsed.kind == ResponseKind::kHandoff) {
      r.any_handoff[s.prompt] = true;
    }
  }
  return r;
}

Scores score(Rollout& r, const RlMethod& method, const RewardFn& reward, CloudAnswerCache* cloud,
             const Task& task, int cloud_concurrency, double handoff_cost, World& world,
             std::chrono::milliseconds verdict_wait) {
  const size_t P = r.prompts.size();
  Scores s;
  s.cloud_correct.resize(P);
  if (method.needs_cloud() && cloud && world.main()) {
    std::vector<std::string> ask;
    std::vector<int> who;
    for (size_t p = 0; p < P; ++p)
      if (r.any_handoff[p] || (method.filter && r.local_correct[p] == 0)) {
        ask.push_back(r.prompts[p]->prompt);
        who.push_back(static_cast<int>(p));
      }
    auto answers = cloud->ask_all(ask, cloud_concurrency);
    for (size_t k = 0; k < who.size(); ++k) {
      const auto answer = extract_final_answer(answers[k].content);  // \boxed{}, <answer>, ####, Answer:
      s.cloud_correct[who[k]] = answer && task.verify(*r.prompts[who[k]], *answer);
      s.cloud_no_answer += !answer;
    }
  }
  if (method.needs_cloud() && world.distributed()) share_verdicts(world, s, verdict_wait);
  double reward_sum = 0;
  int64_t handoffs = 0, correct = 0;
  for (auto& x : r.samples) {
    // The accuracy reward ignores the cloud's verdict; the hierarchical one needs it for a hand-off (§3.2).
    const double base = reward(x.out.parsed, x.local_correct,
                               method.needs_cloud() ? s.cloud_correct[x.prompt] : std::nullopt);
    const bool handoff = x.out.parsed.kind == ResponseKind::kHandoff;
    x.reward = handoff && handoff_cost != 0.0 ? base - handoff_cost : base;
    reward_sum += base;
    handoffs += handoff;
    correct += x.local_correct.value_or(false);
  }
  const double n = static_cast<double>(r.samples.size());
  s.reward_mean = reward_sum / n;
  s.call_rate = handoffs / n;
  s.local_accuracy = correct / n;
  return s;
}

Selection select_prompts(const Rollout& r, const Scores& s, const RlMethod& method, BudgetController& budget,
                         const RlOptions& o, int64_t step) {
  Selection sel;
  const size_t P = r.prompts.size();
  if (!method.filter) {  // the baselines keep every prompt
    sel.kept.resize(P);
    std::iota(sel.kept.begin(), sel.kept.end(), 0);
    return sel;
  }
  std::vector<PromptOutcome> outcomes;
  for (size_t p = 0; p < P; ++p)
    outcomes.push_back({static_cast<int>(o.group), r.local_correct[p], s.cloud_correct[p].value_or(false)});
  std::mt19937_64 frng(step_seed(o.seed, step, 2));
  sel.filter = filter_prompts(outcomes, budget, frng);
  sel.kept = sel.filter.kept;
  return sel;
}

namespace {
// Where a row's advantage starts: its last `credit_token` for a hand-off (--handoff-credit decision), else 0.
int64_t credit_start(const Sample& s, int credit_token) {
  if (credit_token < 0 || s.out.parsed.kind != ResponseKind::kHandoff) return 0;
  const auto& t = s.out.tokens;
  for (size_t i = t.size(); i-- > 0;)
    if (t[i] == credit_token) return static_cast<int64_t>(i);
  return 0;  // called with the phrase alias: no single decision token, every token carries it
}
}  // namespace

void append_row(PolicyBatch& to, const PolicyBatch& from, size_t i) {
  to.prompts.push_back(from.prompts[i]);
  to.completions.push_back(from.completions[i]);
  to.advantages.push_back(from.advantages[i]);
  to.old_logprobs.push_back(from.old_logprobs[i]);
  to.credit_from.push_back(i < from.credit_from.size() ? from.credit_from[i] : 0);
}

PolicyBatch policy_batch(const Rollout& r, const Selection& sel, const RlMethod& method, int64_t group,
                         int credit_token) {
  PolicyBatch b;
  b.kept_prompts = static_cast<int64_t>(sel.kept.size());
  for (int p : sel.kept) {
    std::vector<double> rewards;
    for (int64_t g = 0; g < group; ++g) rewards.push_back(r.samples[p * group + g].reward);
    const auto adv = group_advantages(method.advantage, rewards);
    for (int64_t g = 0; g < group; ++g) {
      const auto& s = r.samples[p * group + g];
      if (adv[g] == 0.0 || s.out.tokens.empty()) continue;  // contributes nothing to the gradient
      b.prompts.push_back(s.out.prompt_tokens);
      b.completions.push_back(s.out.tokens);
      b.advantages.push_back(static_cast<float>(adv[g]));
      b.old_logprobs.push_back(s.out.logprobs);
      b.credit_from.push_back(credit_start(s, credit_token));
    }
  }
  return b;
}

}  // namespace handoff
