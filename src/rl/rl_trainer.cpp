#include "rl/rl_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <sstream>

#include <torch/serialize.h>

#include "cloud/cloud_client.h"
#include "collab/cloud_answers.h"
#include "collab/device_run.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "model/logprobs.h"
#include "rl/metrics_log.h"
#include "rl/pure/advantage.h"
#include "rl/pure/prompt_filter.h"
#include "runtime/kernels.h"
#include "tasks/task.h"

namespace handoff {

namespace {

struct MethodSpec {
  bool hierarchical;        // reward table of §3.2 (else accuracy only: a hand-off counts as wrong)
  AdvantageKind advantage;  // GAPG's (r−r̄)/(G−1) or GRPO's std-normalised
  bool filter;              // adaptive prompt filtering of §3.3
};

MethodSpec method_of(const std::string& algo) {
  if (algo == "gapg") return {true, AdvantageKind::kGapg, true};
  if (algo == "collab-grpo") return {true, AdvantageKind::kGrpo, false};
  if (algo == "collab-drgrpo") return {true, AdvantageKind::kGapg, false};
  if (algo == "task-tuning") return {false, AdvantageKind::kGapg, false};
  if (algo == "grpo") return {false, AdvantageKind::kGrpo, false};
  throw Error("unknown RL algorithm '" + algo + "'");
}

uint64_t mix(uint64_t seed, uint64_t step, uint64_t salt) {
  uint64_t x =
      seed * 0x9E3779B97F4A7C15ull ^ (step + 1) * 0xBF58476D1CE4E5B9ull ^ salt * 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x * 0xD6E8FEB86659FD93ull;
}

std::string serialize_optimizer(torch::optim::AdamW& opt) {
  std::ostringstream os;
  torch::save(opt, os);
  return os.str();
}

// What the step knows about one sampled response.
struct Sample {
  int prompt = 0;
  DeviceOutput out;
  std::optional<bool> local_correct;
  double reward = 0;
  double advantage = 0;
};

}  // namespace

RlResult run_rl(const RlOptions& o, const std::string& init_dir, const std::string& out_dir, bool resume) {
  o.validate();
  const MethodSpec method = method_of(o.algo);
  const HierarchicalReward hier(o.weights, o.allow_any_order);  // rejects weights that break α_a > α_c > α_f
  const TaskTuningReward accuracy(o.format_bonus);
  auto task = make_task(o.task);
  const std::vector<int> diffs = resolve_difficulties(*task, o.difficulties);

  // The cloud: reachable before any training starts, or a clear error now.
  std::unique_ptr<CloudClient> client;
  std::unique_ptr<CloudAnswerCache> cloud;
  const bool needs_cloud = method.hierarchical;
  if (needs_cloud) {
    if (o.cloud_url.empty())
      throw Error("--algo " + o.algo + " needs a cloud",
                  "pass --cloud URL (e.g. a `handoff serve` endpoint)");
    CloudClientOptions co;
    co.base_url = o.cloud_url;
    co.model = o.cloud_model;
    co.api_key_env = o.api_key_env;
    co.read_timeout_s = o.cloud_timeout_s;
    co.max_retries = o.cloud_retries;
    client = std::make_unique<CloudClient>(co);
    if (!client->healthy())
      throw Error("the cloud at " + o.cloud_url + " is not reachable (GET /models failed)",
                  "start it (e.g. `handoff serve --model models/cloud-chain --port 8080`) or fix --cloud");
  }

  make_dirs(out_dir);
  const std::string model_dir = out_dir + "/model";
  if (needs_cloud)
    cloud = std::make_unique<CloudAnswerCache>(
        *client, o.cloud_cache.empty() ? out_dir + "/cloud_cache.jsonl" : o.cloud_cache);

  int64_t start_step = 0;
  double credit = 0;
  int64_t cloud_calls_before = 0;
  const bool resuming = resume && file_exists(model_dir + "/trainer_state.json");
  auto loaded = load_checkpoint(resuming ? model_dir : init_dir, o.device);
  CausalLM model = loaded.model;
  const Tokenizer& tok = *loaded.tokenizer;
  if (resuming) {
    auto st = nlohmann::json::parse(read_file(model_dir + "/trainer_state.json"));
    start_step = st.at("step").get<int64_t>();
    credit = st.value("budget_credit", 0.0);
    cloud_calls_before = st.value("cloud_calls", int64_t{0});
    if (st.value("algo", o.algo) != o.algo)
      throw Error(model_dir + " was trained with --algo " + st.value("algo", std::string()) + ", not " +
                  o.algo);
  }
  CausalLM reference{nullptr};
  if (o.kl_coef > 0) {
    reference = load_checkpoint(init_dir, o.device).model;
    reference->eval();
  }
  model->train();
  torch::optim::AdamW opt(model->parameters(),
                          torch::optim::AdamWOptions(o.lr).betas({0.9, 0.99}).weight_decay(o.weight_decay));
  if (resuming && file_exists(model_dir + "/optimizer.pt")) {
    std::istringstream is(read_file(model_dir + "/optimizer.pt"));
    torch::load(opt, is);
  }
  BudgetController budget(o.budget, o.carry_remainder);
  budget.restore_credit(credit);

  // The fixed training set: prompt_pool train-split problems, uniform over the difficulties.
  std::vector<Problem> pool;
  {
    std::mt19937_64 rng(mix(o.seed, 0, 17));
    for (int64_t i = 0; i < o.prompt_pool; ++i)
      pool.push_back(task->sample(rng, diffs[i % diffs.size()], Split::kTrain));
  }

  MetricsLog log(out_dir + "/metrics.jsonl", start_step);
  auto save = [&](int64_t step) {
    nlohmann::json st = {{"step", step},
                         {"kind", "rl"},
                         {"algo", o.algo},
                         {"budget_credit", budget.credit()},
                         {"cloud_calls", cloud_calls_before + (cloud ? cloud->calls_made() : 0)},
                         {"init", init_dir},
                         {"kernels", kernels_summary()},
                         {"options", o.to_json()}};
    save_checkpoint(model_dir, model, tok,
                    {{"trainer_state.json", st.dump(2) + "\n"}, {"optimizer.pt", serialize_optimizer(opt)}});
  };

  const int64_t G = o.group, P = o.prompts_per_step;
  RlResult res;
  res.steps_done = start_step;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t step = start_step;
  try {
    for (; step < o.steps; ++step) {
      const auto ts = std::chrono::steady_clock::now();
      // 1. Prompts of this step (a function of seed and step only, so resume replays exactly).
      std::mt19937_64 rng(mix(o.seed, step, 1));
      std::vector<const Problem*> batch;
      for (int64_t p = 0; p < P; ++p) batch.push_back(&pool[rng() % pool.size()]);
      // 2. Rollout: G samples of every prompt in one batched generation.
      std::vector<std::string> queries;
      std::vector<uint64_t> seeds;
      for (int64_t p = 0; p < P; ++p)
        for (int64_t g = 0; g < G; ++g) {
          queries.push_back(batch[p]->prompt);
          seeds.push_back(mix(o.seed, step, 1000 + p * G + g));
        }
      model->eval();
      auto outs = run_device(model, tok, queries,
                             device_sampling(tok, o.temperature, o.max_new_tokens, o.top_p), seeds);
      model->train();
      // 3. Local verdicts.
      std::vector<Sample> samples(P * G);
      std::vector<int> local_correct(P, 0);
      std::vector<bool> any_handoff(P, false);
      int64_t gen_tokens = 0;
      for (int64_t i = 0; i < P * G; ++i) {
        auto& s = samples[i];
        s.prompt = static_cast<int>(i / G);
        s.out = std::move(outs[i]);
        gen_tokens += static_cast<int64_t>(s.out.tokens.size());
        if (s.out.parsed.kind == ResponseKind::kLocalAnswer) {
          s.local_correct = task->verify(*batch[s.prompt], s.out.parsed.answer);
          local_correct[s.prompt] += *s.local_correct;
        } else if (s.out.parsed.kind == ResponseKind::kHandoff) {
          any_handoff[s.prompt] = true;
        }
      }
      // 4. The cloud, where its verdict matters: a call for help, or (filtering) an all-failed group.
      std::vector<std::optional<bool>> cloud_correct(P);
      if (needs_cloud) {
        std::vector<std::string> ask;
        std::vector<int> who;
        for (int64_t p = 0; p < P; ++p)
          if (any_handoff[p] || (method.filter && local_correct[p] == 0)) {
            ask.push_back(batch[p]->prompt);
            who.push_back(static_cast<int>(p));
          }
        auto answers = cloud->ask_all(ask, o.cloud_concurrency);
        for (size_t k = 0; k < who.size(); ++k) {
          auto parsed = parse_response(answers[k].content, true);
          cloud_correct[who[k]] =
              parsed.kind == ResponseKind::kLocalAnswer && task->verify(*batch[who[k]], parsed.answer);
        }
      }
      // 5. Rewards (§3.2).
      double reward_sum = 0;
      int64_t handoffs = 0, correct = 0;
      for (auto& s : samples) {
        if (method.hierarchical) {
          s.reward = hier(s.out.parsed, s.local_correct, cloud_correct[s.prompt]);
        } else {
          s.reward = accuracy(s.out.parsed, s.local_correct, std::nullopt);
        }
        reward_sum += s.reward;
        handoffs += s.out.parsed.kind == ResponseKind::kHandoff;
        correct += s.local_correct.value_or(false);
      }
      // 6. Which prompts the update uses (§3.3); the baselines keep all.
      std::vector<int> kept;
      FilterResult fr;
      if (method.filter) {
        std::vector<PromptOutcome> outcomes;
        for (int64_t p = 0; p < P; ++p)
          outcomes.push_back({static_cast<int>(G), local_correct[p], cloud_correct[p].value_or(false)});
        std::mt19937_64 frng(mix(o.seed, step, 2));
        fr = filter_prompts(outcomes, budget, frng);
        kept = fr.kept;
      } else {
        kept.resize(P);
        std::iota(kept.begin(), kept.end(), 0);
      }
      // 7. Group advantages over each kept group.
      std::vector<std::vector<int>> upd_prompts, upd_completions;
      std::vector<float> upd_adv;
      std::vector<float> old_lp_flat;
      std::vector<std::vector<float>> old_lps;
      for (int p : kept) {
        std::vector<double> rewards;
        for (int64_t g = 0; g < G; ++g) rewards.push_back(samples[p * G + g].reward);
        auto adv = group_advantages(method.advantage, rewards);
        for (int64_t g = 0; g < G; ++g) {
          auto& s = samples[p * G + g];
          if (adv[g] == 0.0 || s.out.tokens.empty()) continue;  // contributes nothing to the gradient
          upd_prompts.push_back(s.out.prompt_tokens);
          upd_completions.push_back(s.out.tokens);
          upd_adv.push_back(static_cast<float>(adv[g]));
          old_lps.push_back(s.out.logprobs);
        }
      }
      // 8. Policy gradient: loss = −(1/|kept|) Σ_i A_i Σ_t log π_θ(y_i,t | x, y_i,<t) over device tokens only
      //    (paper §3.3; the cloud's tokens are never part of y_θ). With ppo_epochs > 1 the per-token ratio to
      //    the sampling policy is clipped; at the first epoch the ratio is 1 and the gradient is exactly the
      //    estimator.
      double loss_value = 0;
      if (!upd_adv.empty()) {
        const int64_t B = static_cast<int64_t>(upd_adv.size());
        const double norm = 1.0 / static_cast<double>(kept.size());
        auto adv_t = torch::tensor(upd_adv).to(model->device()).unsqueeze(1);
        int64_t Tc = 0;
        for (auto& c : upd_completions) Tc = std::max<int64_t>(Tc, c.size());
        std::vector<float> old_flat(B * Tc, 0.0f);
        for (int64_t b = 0; b < B; ++b)
          for (size_t t = 0; t < old_lps[b].size(); ++t) old_flat[b * Tc + t] = old_lps[b][t];
        auto old_t = torch::from_blob(old_flat.data(), {B, Tc}, at::kFloat).clone().to(model->device());
        at::Tensor ref_lp;
        if (o.kl_coef > 0) {
          torch::NoGradGuard ng;
          ref_lp = completion_logprobs(reference, upd_prompts, upd_completions).token_logprobs;
        }
        for (int64_t epoch = 0; epoch < o.ppo_epochs; ++epoch) {
          auto lp = completion_logprobs(model, upd_prompts, upd_completions);
          at::Tensor per_token;
          if (o.ppo_epochs == 1) {
            per_token = lp.token_logprobs * adv_t;
          } else {
            auto ratio = at::exp(lp.token_logprobs - old_t.narrow(1, 0, lp.token_logprobs.size(1))) * lp.mask;
            per_token =
                at::min(ratio * adv_t, at::clamp(ratio, 1 - o.clip_eps, 1 + o.clip_eps) * adv_t) * lp.mask;
          }
          auto loss = -per_token.sum() * norm;
          if (o.kl_coef > 0) {  // k3 estimator of KL(π_θ ‖ π_ref), per token
            auto d = (ref_lp - lp.token_logprobs) * lp.mask;
            loss = loss + o.kl_coef * ((at::exp(d) - d - 1) * lp.mask).sum() / lp.mask.sum();
          }
          opt.zero_grad();
          loss.backward();
          if (o.grad_clip > 0) torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
          opt.step();
          loss_value = loss.item<double>();
        }
      }
      // 9. Metrics.
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double n = static_cast<double>(P * G);
      res.last_reward = reward_sum / n;
      res.last_call_rate = handoffs / n;
      res.last_local_accuracy = correct / n;
      res.steps_done = step + 1;
      res.cloud_calls = cloud ? cloud->calls_made() : 0;
      if ((step + 1) % o.log_every == 0 || step + 1 == o.steps) {
        // Sampled hand-off rate per difficulty: whether the policy learns *where* to call, not just how
        // often.
        std::map<int, std::pair<int64_t, int64_t>> by_diff;  // difficulty → (hand-offs, samples)
        for (const auto& s : samples) {
          auto& c = by_diff[batch[s.prompt]->difficulty];
          c.first += s.out.parsed.kind == ResponseKind::kHandoff;
          c.second += 1;
        }
        nlohmann::json call_by_diff = nlohmann::json::object();
        for (const auto& [d, c] : by_diff)
          call_by_diff[std::to_string(d)] = static_cast<double>(c.first) / static_cast<double>(c.second);
        nlohmann::json line = {{"call_rate_by_difficulty", call_by_diff},
                               {"step", step + 1},
                               {"algo", o.algo},
                               {"reward_mean", res.last_reward},
                               {"acc_local", res.last_local_accuracy},
                               {"call_rate", res.last_call_rate},
                               {"budget_call_rate", o.budget / (1 + o.budget)},
                               {"kept_prompts", static_cast<int64_t>(kept.size())},
                               {"kept_fraction", static_cast<double>(kept.size()) / P},
                               {"d1", fr.num_d1()},
                               {"d2_kept", fr.num_d2_kept()},
                               {"d2_candidates", fr.num_d2_candidates()},
                               {"dropped", fr.num_dropped()},
                               {"loss", loss_value},
                               {"tokens_per_s", gen_tokens / secs},
                               {"step_seconds", secs},
                               {"cloud_calls", cloud_calls_before + res.cloud_calls}};
        log.write(line);
        if (!o.quiet) {
          const double eta =
              total / static_cast<double>(step + 1 - start_step) * static_cast<double>(o.steps - step - 1);
          std::fprintf(stderr,
                       "%s step %lld/%lld  reward %.3f  acc %.3f  call %.3f (budget %.2f)  D1 %d D2 %d/%d  "
                       "%.0f tok/s  cloud calls %lld  ETA %.0fs\n",
                       o.algo.c_str(), static_cast<long long>(step + 1), static_cast<long long>(o.steps),
                       res.last_reward, res.last_local_accuracy, res.last_call_rate,
                       o.budget / (1 + o.budget), method.filter ? fr.num_d1() : static_cast<int>(kept.size()),
                       fr.num_d2_kept(), fr.num_d2_candidates(), gen_tokens / secs,
                       static_cast<long long>(cloud_calls_before + res.cloud_calls), eta);
        }
      }
      const bool interrupted = o.stop_at_step > 0 && step + 1 >= o.stop_at_step;
      if ((o.checkpoint_every > 0 && (step + 1) % o.checkpoint_every == 0) || step + 1 == o.steps ||
          interrupted)
        save(step + 1);
      if (interrupted) {
        ++step;
        break;
      }
    }
  } catch (const Error& e) {
    // No lost work: the state after the last completed step is saved before the error leaves.
    save(step);
    throw Error("RL step " + std::to_string(step + 1) + " failed: " + e.what(),
                "the checkpoint at step " + std::to_string(step) + " is in " + model_dir +
                    "; fix the cause and rerun with --resume");
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace handoff
