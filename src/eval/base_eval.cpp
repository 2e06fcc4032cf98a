#include "eval/base_eval.h"

#include <cstdio>

#include "collab/device_run.h"
#include "common/error.h"
#include "eval/eval_set.h"
#include "tasks/answer.h"

namespace handoff {
namespace {

// The device's decoding for the two passes: the knob if given, the hand-off banned if asked.
SamplingOptions eval_sampling(const DeviceSpeech& io, double temperature, const BaseEvalOptions& opts) {
  auto s = device_sampling(io, temperature, opts.max_new_tokens, 1.0, opts.handoff_threshold);
  if (!opts.ban_handoff) return s;
  if (opts.handoff_threshold <= 1.0)
    throw Error("a hand-off threshold and a banned hand-off contradict each other", "give one of them");
  s.banned_ids.push_back(handoff_token_id(io, "banning the hand-off"));
  return s;
}

}  // namespace

std::vector<DifficultyStats> evaluate_base(CausalLM& model, const DeviceSpeech& io, const Task& task,
                                           const BaseEvalOptions& opts) {
  const std::vector<int> diffs = resolve_difficulties(task, opts.difficulties);
  auto problems = make_eval_set(task, diffs, opts.n_per_difficulty, opts.seed, opts.split);
  require_encodable(io, problems);
  require_readable(io, task, problems);
  std::vector<std::string> queries;
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < problems.size(); ++i) {
    queries.push_back(problems[i].prompt);
    seeds.push_back(opts.seed + i);
  }
  auto greedy = run_device(model, io, queries, eval_sampling(io, 0.0, opts), seeds);
  std::vector<DeviceOutput> sampled;
  if (opts.sample_temperature > 0)
    sampled = run_device(model, io, queries, eval_sampling(io, opts.sample_temperature, opts), seeds);

  std::vector<DifficultyStats> stats;
  for (int d : distinct_difficulties(diffs)) {
    DifficultyStats s;
    s.difficulty = d;
    s.sampled = !sampled.empty();
    for (size_t i = 0; i < problems.size(); ++i) {
      if (problems[i].difficulty != d) continue;
      ++s.n;
      const auto& g = greedy[i].parsed;
      s.accuracy += g.kind == ResponseKind::kLocalAnswer && task.verify(problems[i], g.answer);
      s.handoff_rate += g.kind == ResponseKind::kHandoff;
      s.format_errors += g.kind == ResponseKind::kFormatError;
      s.mean_tokens += static_cast<double>(greedy[i].tokens.size());
      if (!sampled.empty()) {
        const auto& p = sampled[i].parsed;
        s.sampled_accuracy += p.kind == ResponseKind::kLocalAnswer && task.verify(problems[i], p.answer);
        s.sampled_handoff_rate += p.kind == ResponseKind::kHandoff;
      }
    }
    if (s.n > 0)
      for (double* v : {&s.accuracy, &s.handoff_rate, &s.format_errors, &s.sampled_accuracy,
                        &s.sampled_handoff_rate, &s.mean_tokens})
        *v /= static_cast<double>(s.n);
    stats.push_back(s);
  }
  return stats;
}

// The sampled columns read "—" where no sampled pass ran (--sample-temperature 0), not a rate of 0.
std::string base_eval_table(const std::vector<DifficultyStats>& stats) {
  std::string out =
      "| difficulty | n | accuracy (greedy) | hand-off (greedy) | format errors | accuracy (sampled) | "
      "hand-off (sampled) | "
      "tokens |\n|---|---|---|---|---|---|---|---|\n";
  char buf[256];
  const auto rate = [&](bool ran, double v) {
    if (!ran) return std::string("—");
    std::snprintf(buf, sizeof buf, "%.3f", v);
    return std::string(buf);
  };
  double acc = 0, ho = 0, sacc = 0, sho = 0;
  int64_t n = 0;
  bool all_sampled = !stats.empty();
  for (const auto& s : stats) {
    const std::string sa = rate(s.sampled, s.sampled_accuracy), sh = rate(s.sampled, s.sampled_handoff_rate);
    std::snprintf(buf, sizeof buf, "| %d | %lld | %.3f | %.3f | %.3f | %s | %s | %.1f |\n", s.difficulty,
                  static_cast<long long>(s.n), s.accuracy, s.handoff_rate, s.format_errors, sa.c_str(),
                  sh.c_str(), s.mean_tokens);
    out += buf;
    acc += s.accuracy * s.n;
    ho += s.handoff_rate * s.n;
    sacc += s.sampled_accuracy * s.n;
    sho += s.sampled_handoff_rate * s.n;
    n += s.n;
    all_sampled = all_sampled && s.sampled;
  }
  if (n > 0) {
    const std::string sa = rate(all_sampled, sacc / n), sh = rate(all_sampled, sho / n);
    std::snprintf(buf, sizeof buf, "| all | %lld | %.3f | %.3f | | %s | %s | |\n", static_cast<long long>(n),
                  acc / n, ho / n, sa.c_str(), sh.c_str());
    out += buf;
  }
  return out;
}

nlohmann::json base_eval_json(const std::vector<DifficultyStats>& stats) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : stats)
    j.push_back(
        {{"difficulty", s.difficulty},
         {"n", s.n},
         {"accuracy", s.accuracy},
         {"handoff_rate", s.handoff_rate},
         {"format_errors", s.format_errors},
         {"sampled_accuracy", s.sampled ? nlohmann::json(s.sampled_accuracy) : nlohmann::json()},
         {"sampled_handoff_rate", s.sampled ? nlohmann::json(s.sampled_handoff_rate) : nlohmann::json()},
         {"mean_tokens", s.mean_tokens}});
  return j;
}

}  // namespace handoff
