#include "eval/collab_eval.h"

#include <cstdio>
#include <map>

#include "collab/device_run.h"
#include "eval/eval_set.h"

namespace handoff {

std::vector<CollabStats> evaluate_collab(Collaborator& collab, const Task& task,
                                         const std::vector<int>& difficulties, int64_t n_per_difficulty,
                                         uint64_t seed, Split split) {
  const auto items = make_eval_set(task, difficulties, n_per_difficulty, seed, split);
  if (!collab.remote_device()) {  // a device server encodes the prompts itself
    require_encodable(collab.speech(), items);
    require_readable(collab.speech(), task, items);
  }
  std::vector<std::vector<ChatMessage>> queries;
  std::vector<uint64_t> seeds;
  for (size_t i = 0; i < items.size(); ++i) {
    queries.push_back({{"user", items[i].prompt}});
    seeds.push_back(i);
  }
  CollabOptions o = collab.options();
  o.temperature = 0.0;  // the deployed policy's own decision
  const auto results = collab.answer(queries, seeds, o);

  // The whole set is one device batch: each query's device_ms is that batch's wall time, so the per-query
  // figure reported is the amortised share (batch time / queries). Cloud calls are per query.
  const double batch = static_cast<double>(std::max<size_t>(1, items.size()));
  std::map<int, CollabStats> by;
  CollabStats all;
  all.difficulty = -1;
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& r = results[i];
    const bool correct = !r.answer.empty() && task.verify(items[i], r.answer);
    for (CollabStats* s : {&by[items[i].difficulty], &all}) {
      s->n += 1;
      s->accuracy += correct;
      s->call_rate += r.called_cloud;
      s->device_correct += correct && r.answered_by == AnsweredBy::kDevice;
      s->fallback_rate += r.answered_by == AnsweredBy::kDeviceFallback;
      s->device_tokens += static_cast<double>(r.device_tokens);
      s->cloud_tokens += static_cast<double>(r.cloud_tokens);
      s->cloud_prompt_tokens += static_cast<double>(r.cloud_prompt_tokens);
      s->cloud_no_answer += r.answered_by == AnsweredBy::kCloud && r.answer.empty();
      s->device_ms += r.device_ms / batch;
      s->cloud_ms += r.cloud_ms;
    }
  }
  std::vector<CollabStats> out;
  for (auto& [d, s] : by) {
    s.difficulty = d;
    out.push_back(s);
  }
  out.push_back(all);
  for (auto& s : out) {
    const double n = static_cast<double>(std::max<int64_t>(1, s.n));
    for (double* v : {&s.accuracy, &s.call_rate, &s.device_correct, &s.fallback_rate, &s.device_tokens,
                      &s.cloud_tokens, &s.cloud_prompt_tokens, &s.cloud_no_answer, &s.device_ms, &s.cloud_ms})
      *v /= n;
  }
  return out;
}

std::string collab_eval_table(const std::vector<CollabStats>& stats) {
  std::string out =
      "| difficulty | n | accuracy | cloud-call rate | device-correct | fallbacks | device tokens | cloud "
      "tokens "
      "| device ms/query (amortised) | cloud ms/query |\n|---|---|---|---|---|---|---|---|---|---|\n";
  char buf[320];
  for (const auto& s : stats) {
    const std::string d = s.difficulty < 0 ? "all" : std::to_string(s.difficulty);
    std::snprintf(buf, sizeof buf, "| %s | %lld | %.3f | %.3f | %.3f | %.3f | %.1f | %.1f | %.1f | %.1f |\n",
                  d.c_str(), static_cast<long long>(s.n), s.accuracy, s.call_rate, s.device_correct,
                  s.fallback_rate, s.device_tokens, s.cloud_tokens, s.device_ms, s.cloud_ms);
    out += buf;
  }
  return out;
}

nlohmann::json collab_eval_json(const std::vector<CollabStats>& stats) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& s : stats)
    rows.push_back({{"difficulty", s.difficulty < 0 ? nlohmann::json("all") : nlohmann::json(s.difficulty)},
                    {"n", s.n},
                    {"accuracy", s.accuracy},
                    {"call_rate", s.call_rate},
                    {"device_correct", s.device_correct},
                    {"fallback_rate", s.fallback_rate},
                    {"device_tokens", s.device_tokens},
                    {"cloud_tokens", s.cloud_tokens},
                    {"cloud_prompt_tokens", s.cloud_prompt_tokens},
                    {"cloud_no_answer", s.cloud_no_answer},
                    {"device_ms", s.device_ms},
                    {"cloud_ms", s.cloud_ms}});
  return rows;
}

}  // namespace handoff
