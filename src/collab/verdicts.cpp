#include "collab/verdicts.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "collab/device_run.h"
#include "protocol/final_answer.h"

namespace handoff {

CloudVerdicts cloud_verdicts(CloudAnswerCache& cloud, const Task& task, const std::vector<Problem>& items) {
  std::vector<std::string> queries;
  for (const auto& p : items) queries.push_back(p.prompt);
  auto answers = cloud.ask_all(queries);
  CloudVerdicts v;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto answer = extract_final_answer(answers[i].content);  // \boxed{}, <answer>, ####, Answer:
    v.correct.push_back(answer && task.verify(items[i], *answer));
    v.tokens.push_back(answers[i].completion_tokens);
    v.latency_ms.push_back(answers[i].latency_ms);
  }
  return v;
}

std::vector<DeviceOutput> greedy_device_outputs(CausalLM& model, const DeviceSpeech& io,
                                                const std::vector<Problem>& items, int64_t max_new_tokens,
                                                double handoff_threshold) {
  std::vector<std::string> queries;
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < items.size(); ++i) {
    queries.push_back(items[i].prompt);
    seeds.push_back(i);
  }
  model->eval();
  return run_device(model, io, queries, device_sampling(io, 0.0, max_new_tokens, 1.0, handoff_threshold),
                    seeds);
}

DeviceVerdicts device_verdicts(CausalLM& model, const DeviceSpeech& io, const Task& task,
                               const std::vector<Problem>& items, int64_t max_new_tokens,
                               double handoff_threshold) {
  const auto outs = greedy_device_outputs(model, io, items, max_new_tokens, handoff_threshold);
  DeviceVerdicts d;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& o = outs[i];
    d.local_correct.push_back(o.parsed.kind == ResponseKind::kLocalAnswer &&
                              task.verify(items[i], o.parsed.answer));
    d.handoff.push_back(o.parsed.kind == ResponseKind::kHandoff);
    double s = 0;
    for (float lp : o.logprobs) s += lp;
    d.mean_logprob.push_back(o.logprobs.empty() ? 0.f : static_cast<float>(s / o.logprobs.size()));
    d.tokens.push_back(static_cast<int64_t>(o.tokens.size()));
    d.text.push_back(o.text);
  }
  if (!items.empty()) {
    // Batch-1 decode speed, what one user waits per token: 32 greedy tokens, no stop, after one warm-up call.
    SamplingOptions one = device_sampling(io, 0.0, 32);
    one.stop_ids.clear();
    one.boost_token = -1;
    const std::vector<std::vector<int>> prompt{io.encode_query(items.front().prompt)};
    generate(model, prompt, one, {0});
    // Best of 3: the machine may be shared, and the fastest run is closest to the model's own cost.
    double ms = 1e30;
    size_t n = 1;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      auto g = generate(model, prompt, one, {0});
      ms = std::min(ms,
                    std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      n = std::max<size_t>(1, g.tokens[0].size());
    }
    d.ms_per_token = ms / static_cast<double>(n);
  }
  return d;
}

double calibrate_handoff_threshold(CausalLM& model, const DeviceSpeech& io, const Task& task,
                                   const std::vector<Problem>& items, int64_t max_new_tokens, double rate) {
  auto call_rate = [&](double thr) {
    auto d = device_verdicts(model, io, task, items, max_new_tokens, thr);
    return std::accumulate(d.handoff.begin(), d.handoff.end(), 0.0) / std::max<size_t>(1, items.size());
  };
  double lo = std::log(1e-4), hi = std::log(1.0);  // low threshold → many calls; high → few
  double best = 1.0;
  for (int it = 0; it < 10; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (call_rate(std::exp(mid)) > rate) {
      lo = mid;
    } else {
      hi = mid;
      best = std::exp(mid);
    }
  }
  return best;
}

}  // namespace handoff
